"""Block-YAML cassette loading measured against the fast YAML parsers: load time and peak RSS per
parser (each load cold, in a fresh process, median of 3), and whether each gives the very document
the project's safe loader gives on the cases where YAML loaders differ (YAML 1.1 scalars, tags,
merge keys, aliases, nesting, encoding, error lines).

    python benchmarks/bench_yaml.py [--runs 3] [--parsers a,b] FILE...   speed table
    python benchmarks/bench_yaml.py --fidelity [CASSETTE...]              fidelity matrix

Parsers: ``libyaml`` (PyYAML's CSafeLoader as it is), ``project`` (rulesfile.load_yaml with the
cassette loader: bounded, timestamps left as strings; the reference), ``yaml_rs``, ``pyyaml_rs``,
``ryml_json`` (rapidyaml's tree emitted as JSON, read by ``json``) and ``ryml_walk`` (rapidyaml's
tree built into Python objects with PyYAML's own YAML 1.1 resolvers and constructors). A parser
missing from the interpreter is reported as such. Run with an interpreter that has the candidates
(a scratch venv with the project installed); the project's own venv has only PyYAML.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

PARSERS = ["libyaml", "project", "yaml_rs", "pyyaml_rs", "ryml_json", "ryml_walk"]
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))


# ---------------------------------------------------------------- the loaders, one per parser

def _loader(name: str):
    """``load(data: bytes) -> object`` for parser ``name`` (imports only that parser)."""
    if name == "libyaml":
        import yaml
        return lambda data: yaml.load(data, Loader=yaml.CSafeLoader)
    if name == "project":
        from xblreplay import rulesfile
        from xblreplay.cassette.locate import Loader
        return lambda data: rulesfile.load_yaml(data, Loader)
    if name == "yaml_rs":
        import yaml_rs
        # As close to the safe loader as its options go: timestamps off, a repeated key's last
        # value kept (PyYAML's behaviour; yaml_rs refuses repeats by default).
        last = yaml_rs.DuplicateKeyPolicy.LastWins
        return lambda data: yaml_rs.load(data, parse_datetime=False, duplicate_key_policy=last,
                                         encoder_errors="strict")
    if name == "pyyaml_rs":
        import pyyaml_rs  # takes str only
        return lambda data: pyyaml_rs.safe_load(data.decode("utf-8"))
    if name == "ryml_json":
        import ryml
        return lambda data: json.loads(ryml.emit_json(ryml.parse_in_arena(data)))
    if name == "ryml_walk":
        return _ryml_walk()
    raise SystemExit(f"unknown parser {name}")


def _ryml_walk():
    """rapidyaml's tree built in Python: plain scalars resolved by PyYAML's YAML 1.1 implicit
    resolvers (timestamps left out, as the project does) and built by SafeConstructor; quoted
    scalars are strings; anchors, aliases and ``<<`` merges followed; other tags refused. What
    rapidyaml costs once its untyped tree has to become Python objects."""
    import ryml
    import yaml

    ts = "tag:yaml.org,2002:timestamp"
    resolvers = {k: [r for r in v if r[0] != ts] for k, v in yaml.resolver.Resolver.yaml_implicit_resolvers.items()}
    con = yaml.SafeLoader("")
    build = {"tag:yaml.org,2002:" + t: getattr(con, "construct_yaml_" + t) for t in ("int", "float", "bool", "null")}
    build["tag:yaml.org,2002:str"] = lambda node: node.value
    tags = {"!!" + t[18:]: f for t, f in build.items()}
    nil = 2**64 - 1

    def scalar(text: str, quoted: bool, tag: bytes | None):
        if tag is not None:
            if tag.decode() not in tags:
                raise ValueError(f"tag {tag.decode()} not allowed")
            return tags[tag.decode()](yaml.ScalarNode("", text))
        if quoted:
            return text
        for t, rx in resolvers.get(text[:1], ()):
            if rx.match(text):
                return build[t](yaml.ScalarNode(t, text)) if t in build else text
        return None if text == "" else text

    def load(data: bytes):
        tree = ryml.parse_in_arena(data)
        anchors: dict[bytes, object] = {}

        def node(i: int):
            if tree.is_val_ref(i):
                return anchors[bytes(tree.val_ref(i))]
            if tree.is_map(i):
                value: object = {}
                merged: list = []
                c = tree.first_child(i)
                while c != nil:
                    k = bytes(tree.key(c)).decode()
                    if k == "<<" and not tree.is_key_quoted(c):
                        m = node(c)
                        merged.extend(m if isinstance(m, list) else [m])
                    else:
                        value[scalar(k, tree.is_key_quoted(c), None)] = node(c)
                    c = tree.next_sibling(c)
                for m in merged:  # an earlier mapping in a << list wins over a later one
                    value = {**m, **value}
            elif tree.is_seq(i):
                value = []
                c = tree.first_child(i)
                while c != nil:
                    value.append(node(c))
                    c = tree.next_sibling(c)
            else:
                raw = tree.val(i)
                tag = bytes(tree.val_tag(i)) if tree.has_val_tag(i) else None
                value = scalar(bytes(raw).decode() if raw is not None else "", tree.is_val_quoted(i), tag)
            if tree.has_val_anchor(i):
                anchors[bytes(tree.val_anchor(i))] = value
            return value

        root = tree.root_id()
        if tree.is_stream(root):
            if tree.num_children(root) != 1:
                raise ValueError("expected a single document")
            root = tree.first_child(root)
        return node(root)

    return load


# ---------------------------------------------------------------- comparing documents

MAX_TOKENS = 50_000_000  # an alias bomb loaded as shared objects would take hours to walk


def typed(value, max_tokens: int = MAX_TOKENS) -> list[str]:
    """The document as a flat list of tokens with every value's type spelled out (``1``, ``1.0``
    and ``True`` differ) and mapping order kept; a collection that contains itself is written as
    ``<cycle>``. Flat and iterative: the documents compared here can be 100,000 levels deep.
    Past ``MAX_TOKENS`` (aliases repeating a collection without bound) it stops at ``<huge>``."""
    out: list[str] = []
    on_path: set[int] = set()
    todo: list = [(value, False)]
    while todo:
        if len(out) > max_tokens:
            return out[:100] + ["<huge>"]
        v, leave = todo.pop()
        if leave:
            on_path.discard(id(v))
            out.append(")")
        elif isinstance(v, (dict, list)):
            if id(v) in on_path:
                out.append("<cycle>")
                continue
            on_path.add(id(v))
            out.append(type(v).__name__ + "(")
            todo.append((v, True))
            items = [x for kv in v.items() for x in kv] if isinstance(v, dict) else v
            todo.extend((x, False) for x in reversed(items))
        else:
            out.append(f"{type(v).__name__}:{v!r}")
    return out


def digest(tokens: list[str]) -> str:
    return hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- one load in a fresh process

def child(name: str, path: str, with_value: bool) -> None:
    """Loads ``path`` with ``name`` and prints one JSON line: seconds, peak RSS (taken before
    anything else is built), and the document's digest (or its typed form) or the error."""
    data = Path(path).read_bytes()
    try:
        load = _loader(name)
    except ImportError as exc:
        print(json.dumps({"missing": str(exc)}))
        return
    t0 = time.perf_counter()
    try:
        doc = load(data)
    except BaseException as exc:  # noqa: BLE001 - every way a parser can refuse is a result here
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300], "s": time.perf_counter() - t0,
                          "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        return
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = typed(doc, 2_000_000 if with_value else MAX_TOKENS)  # the cases are small documents
    out = {"s": seconds, "rss": rss, "digest": digest(tokens)}
    if with_value:
        out["value"] = tokens[:200]
    print(json.dumps(out))


def run_child(name: str, path: str, with_value: bool = False, timeout: float = 900,
              mem_bytes: int | None = None) -> dict:
    """One load in a fresh interpreter: its JSON line, or how the process ended (a timeout, a
    signal, the address-space limit)."""
    def limit() -> None:
        if mem_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    cmd = [sys.executable, __file__, "--child", name, path] + (["--value"] if with_value else [])
    try:
        # One hash seed for every child: a set's order (in its typed form) is then the same in all.
        env = dict(os.environ, PYTHONHASHSEED="0")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit, env=env)
    except subprocess.TimeoutExpired:
        return {"killed": f"timeout {timeout:.0f}s"}
    if p.returncode < 0:
        return {"killed": signal.Signals(-p.returncode).name, "stderr": p.stderr[-200:]}
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"killed": f"exit {p.returncode}", "stderr": p.stderr[-300:]}
    out = json.loads(lines[-1])
    out["stderr"] = p.stderr[-300:]
    return out


# ---------------------------------------------------------------- speed and peak RSS

def speed(files: list[str], parsers: list[str], runs: int) -> None:
    print(f"{'file':<34}{'parser':<11}{'load s':>9}{'RSS MB':>9}{'x file':>8}{'s/libyaml':>11}"
          f"{'RSS/libyaml':>12}  same doc as project")
    for path in files:
        size_mb = os.path.getsize(path) / 2**20
        rows = {}
        for name in parsers:
            results = [run_child(name, path) for _ in range(runs)]
            good = [r for r in results if "s" in r and "error" not in r]
            if not good:
                r = results[0]
                rows[name] = None
                why = r.get("missing") or r.get("error") or r.get("killed")
                print(f"{Path(path).parent.name + '/' + Path(path).name:<34}{name:<11}  -- {why}"[:160])
                continue
            rows[name] = (statistics.median(r["s"] for r in good), statistics.median(r["rss"] for r in good),
                          good[0]["digest"])
        base = rows.get("libyaml")
        ref = rows.get("project") or base
        for name, row in rows.items():
            if row is None:
                continue
            s, rss, dig = row
            ratio = f"{s / base[0]:.3f}" if base else "-"
            rratio = f"{rss / base[1]:.2f}" if base else "-"
            same = "-" if ref is None else ("yes" if dig == ref[2] else "NO")
            print(f"{Path(path).parent.name + '/' + Path(path).name:<34}{name:<11}{s:>9.3f}{rss:>9.0f}"
                  f"{rss / size_mb:>8.1f}{ratio:>11}{rratio:>12}  {same}")
        sys.stdout.flush()


# ---------------------------------------------------------------- fidelity cases

def _laughs(levels: int, fan: int = 10) -> bytes:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return ("\n".join(lines) + "\n").encode()


def _nest(levels: int) -> bytes:
    return b"a: " + b"[" * levels + b"]" * levels + b"\n"


# name -> (text, the line an error should name, or 0)
CASES: dict[str, tuple[bytes, int]] = {
    "bool yes/no/on/off": (b"a: [yes, no, on, off, y, n, Yes, OFF, true, False]\n", 0),
    "int 0o17 (1.2 octal)": (b"a: 0o17\n", 0),
    "int 017 (1.1 octal)": (b"a: 017\n", 0),
    "int 1_000": (b"a: 1_000\n", 0),
    "int 1:30 (sexagesimal)": (b"a: 1:30\n", 0),
    "int 0x1F, 0b101": (b"a: [0x1F, 0b101, +12, -0]\n", 0),
    "float forms (1e3 is str in 1.1)": (b"a: [1e3, 1.0e+3, .5, -0.0, 6.8523015e+5]\n", 0),
    ".inf/.nan (refused)": (b"a: 1\nb: .inf\n", 2),
    "timestamps (kept as str)": (b"a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\n", 0),
    "null forms": (b"a: [~, null, Null, NULL, ]\nb:\n", 0),
    "30-digit int (refused)": (b"a: 1\nb: 123456789012345678901234567890\n", 2),
    "duplicate keys": (b"a: 1\na: 2\n", 0),
    "!!python/object/apply (refused)": (b"a: 1\nb: !!python/object/apply:os.system ['true']\n", 2),
    "!!python/name (refused)": (b"a: 1\nb: !!python/name:os.system\n", 2),
    "custom tag !foo (refused)": (b"a: 1\nb: !foo bar\n", 2),
    "!!str/!!int/!!float": (b"a: !!str 123\nb: !!int '7'\nc: !!float '1'\n", 0),
    "!!binary/!!set": (b"a: !!binary aGk=\nb: !!set {x, y}\n", 0),
    "merge key <<": (b"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", 0),
    "merge key << list": (b"a: &a {x: 1}\nb: &b {x: 9, y: 2}\nc: {<<: [*a, *b], z: 3}\n", 0),
    "anchors/aliases": (b"a: &x [1, {k: v}]\nb: *x\n", 0),
    "laughs 10^4 (loads)": (_laughs(4), 0),
    "billion laughs 10^9 (refused)": (_laughs(9), 0),
    "recursive alias (refused)": (b"a: &x [1, *x]\n", 0),
    "nesting 201 (refused)": (_nest(201), 1),
    "nesting 100k [ (refused)": (_nest(100_000), 1),
    "invalid UTF-8 (refused)": (b"a: 1\nb: \xff\xfe\n", 2),
    "BOM": (b"\xef\xbb\xbfa: 1\n", 0),
    "two documents (refused)": (b"a: 1\n---\nb: 2\n", 2),
    "empty document": (b"", 0),
    "complex key (refused)": (b"a: 1\n? [1, 2]\n: x\n", 2),
    "non-str keys": (b"1: a\n2.5: b\ntrue: c\n~: d\n", 0),
    "syntax error: flow (line)": (b"a: 1\nb: 2\nc: [1, 2\nd: 4\n", 4),
    "syntax error: indent (line)": (b"a: 1\nb: 2\n  c: 3\n", 3),
    "%YAML 1.2 directive": (b"%YAML 1.2\n---\na: [yes, 0o17]\n", 0),
}


def _names_line(message: str, line: int) -> bool:
    return any(f in message for f in (f"line {line}", f"line={line}", f"line: {line}", f":{line}:"))


def fidelity(parsers: list[str], cassettes: list[str]) -> int:
    """Each case through each parser; a parser passes a case when it gives the project's document
    (types and order included) or, where the project refuses, refuses too (an exception, not a
    crash, a timeout or the memory limit). ``L`` marks a refusal whose message names the line."""
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="bench_yaml_"))
    inputs = []
    for i, (case, (text, line)) in enumerate(CASES.items()):
        p = tmp / f"case{i}.yaml"
        p.write_bytes(text)
        inputs.append((case, str(p), line, True))
    inputs += [(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c, c, 0, False) for c in cassettes]
    width = max(len(c[0]) for c in inputs) + 1
    print(f"{'case':<{width}}" + "".join(f"{p:>12}" for p in parsers))
    fails = {p: 0 for p in parsers}
    for case, path, line, small in inputs:
        results = {p: run_child(p, path, with_value=small, timeout=60, mem_bytes=6 * 2**30) for p in parsers}
        ref = results.get("project")
        cells = []
        for p in parsers:
            r = results[p]
            if "missing" in r:
                cells.append("missing")
                continue
            if "killed" in r:
                cell = "CRASH:" + r["killed"]
                ok = False
            elif "error" in r:
                cell = "refused" + (" L" if line and _names_line(r["error"] + r.get("stderr", ""), line) else "")
                ok = ref is not None and "error" in ref
            else:
                cell = "loaded"
                ok = ref is not None and "digest" in ref and r["digest"] == ref["digest"]
            if p != "project":
                cell = ("pass " if ok else "FAIL ") + cell
                fails[p] += not ok
            cells.append(cell)
        print(f"{case:<{width}}" + "".join(f"{c[:24]:>{max(12, len(c[:24]) + 2)}}" for c in cells))
        if os.environ.get("BENCH_YAML_VERBOSE"):
            for p in parsers:
                r = results[p]
                print(f"    {p}: {r.get('value', r.get('error', r.get('killed')))!r:.300}")
        sys.stdout.flush()
    print("failures: " + ", ".join(f"{p} {n}/{len(inputs)}" for p, n in fails.items() if p != "project"))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parsers", default=",".join(PARSERS))
    ap.add_argument("--fidelity", action="store_true", help="the fidelity matrix (files: extra cassettes)")
    ap.add_argument("--child", nargs=2, metavar=("PARSER", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--value", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.value)
        return 0
    parsers = args.parsers.split(",")
    if args.fidelity:
        cassettes = args.files or sorted(glob.glob(str(ROOT / "cassettes" / "**" / "*.yaml"), recursive=True))
        return fidelity(parsers, cassettes)
    if not args.files:
        ap.error("name the cassette files to time")
    speed(args.files, parsers, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
