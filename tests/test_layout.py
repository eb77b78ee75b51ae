"""The package's layout keeps its promises (docs/DESIGN.md, "Layout"): mitmproxy only in the glue,
one query splitter, one YAML loader, one answer builder, fault kinds named only where they are
applied, and modules small enough to read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from xblreplay.faults import KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "addons" / "xblreplay"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 450


def source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def calls(path: Path, name: str) -> int:
    """Calls of ``name`` or of an attribute ``….name`` in the module."""
    return sum(1 for node in ast.walk(ast.parse(source(path))) if isinstance(node, ast.Call)
               and (getattr(node.func, "attr", None) == name or getattr(node.func, "id", None) == name))


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def test_the_package_is_found():
    assert len(MODULES) > 50 and (PACKAGE / "mitm" / "addon.py") in MODULES


def test_mitmproxy_is_imported_only_in_the_glue():
    importing = {relative(p) for p in MODULES if any(m == "mitmproxy" or m.startswith("mitmproxy.") for m in imports(p))}
    assert importing and all(name.startswith("mitm/") for name in importing), importing


def test_a_query_is_split_in_one_module():
    splitting = {relative(p) for p in MODULES
                 if re.search(r"parse_qsl?\(|\.split\(\s*[\"']&[\"']\s*\)", source(p))}
    assert splitting == {"contract/request.py"}


def test_one_yaml_loader():
    loading = {relative(p): calls(p, "load") for p in MODULES if "yaml" in imports(p)}
    assert {name for name, n in loading.items() if n} == {"rulesfile/yamldoc.py"}, loading
    assert loading["rulesfile/yamldoc.py"] == 1


def test_every_made_up_answer_is_built_in_answers_py():
    building = {relative(p) for p in MODULES if calls(p, "Answer")}
    assert building == {"answers.py"}, building


@pytest.mark.parametrize("folder", ["mitm", "proxy"])
def test_the_proxy_applies_faults_without_naming_their_kinds(folder):
    """Adding a fault kind touches faults.py and rules/faults.schema.json only: the policy and the
    hooks carry out an Effect and name no kind."""
    for path in sorted((PACKAGE / folder).glob("*.py")):
        strings = {node.value for node in ast.walk(ast.parse(source(path)))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        assert not strings & set(KINDS), (relative(path), strings & set(KINDS))


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {relative(p): n for p in MODULES if (n := source(p).count("\n")) > MAX_LINES}
    assert not long, long
