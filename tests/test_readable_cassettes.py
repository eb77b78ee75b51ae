"""Cassettes a person can read and review: one achievement per line in what the project writes.

Recorded through a real mitmdump from a real local upstream: no line over 4 KB, one line per
recorded item, re-recording unchanged data gives the same bytes, one achievement changed upstream
is one changed line (beside the stamps of when it was recorded), and every body keeps the
service's own tokens (number and string spellings, key order). Files written one interaction per
line by earlier builds still load and are laid out anew, token for token, when rewritten. Nothing
the project writes in block YAML uses anchors or aliases, and the example cassette has none.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from pathlib import Path

import pytest
import yaml

import refservice
from proxyharness import REPO, XUID, Mitmdump, Upstream
from test_e2e_real_captures import CAPTURES, credentials, serve_captures
from xblreplay import cassette
from xblreplay.cassette import CassetteError

MAX_LINE = 4096
BASE = f"/users/xuid({XUID})/achievements"
TITLES = {1111: 23, 2222: 141}  # 2222 takes two pages of 100
# An independent reading of JSON text into its tokens: strings and numbers exactly as spelled.
TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null|[{}\[\],:]')
STAMPS = re.compile(r'"(recorded_at|latency_ms)": ("[^"]*"|[0-9.]+)')


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def holds_run(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` stands as one contiguous run in ``haystack``."""
    sep = "\x00"
    return (sep + sep.join(needle) + sep) in (sep + sep.join(haystack) + sep)


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*.yaml"))}


def item_lines(text: str) -> list[dict]:
    """The lines of a written cassette that are one wire achievement each, read as JSON."""
    items = []
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("{") and '"serviceConfigId"' in line:
            try:
                value = json.loads(line)
            except ValueError:
                continue  # an envelope line that opens an interaction
            if isinstance(value, dict) and "progressState" in value:
                items.append(value)
    return items


def record_pages(work: Path, cassettes: Path, items: list[dict]) -> int:
    """One mitmdump run in record mode paging every title unfiltered; returns the items served."""
    served = 0
    with Upstream(refservice.handler(items)) as up:
        with Mitmdump(work, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            for tid in TITLES:
                token = None
                while True:
                    path = f"{BASE}?titleId={tid}&maxItems=100" + (f"&continuationToken={token}" if token else "")
                    reply = proxy.request(path)
                    assert reply.status == 200, reply.body[:300]
                    page = reply.json()
                    served += len(page["achievements"])
                    token = page["pagingInfo"]["continuationToken"]
                    if token is None:
                        break
        out = proxy.stop()
    assert "not recorded" not in out, out[-2000:]
    return served


@pytest.mark.e2e
def test_recorded_files_have_an_achievement_per_line_and_diff_by_the_line(tmp_path):
    items = refservice.make_dataset(11, TITLES)
    cassettes = tmp_path / "cassettes"
    served = record_pages(tmp_path, cassettes, items)
    first = files_of(cassettes)
    assert first and served == sum(TITLES.values())
    text = "".join(data.decode("utf-8") for data in first.values())
    assert max(len(line.encode()) for line in text.splitlines()) <= MAX_LINE
    assert sorted(json.dumps(i, sort_keys=True) for i in item_lines(text)) == \
        sorted(json.dumps(i, sort_keys=True) for i in items)

    # Unchanged data recorded again: the very same bytes.
    record_pages(tmp_path, cassettes, items)
    assert files_of(cassettes) == first

    # One unlock time changed upstream: one line changes, beside when it was recorded.
    changed = next(i for i in items if i["titleAssociations"][0]["id"] == 2222 and i["id"] == "120")
    changed["progression"]["timeUnlocked"] = "2026-12-24T18:00:00.1234567Z"
    changed["progressState"] = "Achieved"
    record_pages(tmp_path, cassettes, items)
    after = files_of(cassettes)
    assert after.keys() == first.keys()
    assert [name for name in first if first[name] != after[name]] == [f"recorded/{XUID}/2222.yaml"]
    old, new = (files[f"recorded/{XUID}/2222.yaml"].decode().splitlines() for files in (first, after))
    diff = [line for line in difflib.unified_diff(old, new, lineterm="", n=0) if line[:1] in "+-"
            and not line.startswith(("+++", "---"))]
    achievements = [line for line in diff if '"serviceConfigId"' in line and '"request"' not in line]
    assert len(achievements) == 2, diff  # the one line, before and after
    assert json.loads(achievements[1][1:].strip().rstrip(","))["progression"]["timeUnlocked"] == \
        "2026-12-24T18:00:00.1234567Z"
    # Every other changed line differs only in when it was recorded and how long it took.
    stamps = [line for line in diff if line not in achievements]
    assert len(stamps) % 2 == 0 and len(stamps) <= 6, diff
    removed, added = ([STAMPS.sub(r'"\1": _', line[1:]) for line in stamps if line[0] == c] for c in "-+")
    assert removed == added, diff


def spelled_body() -> bytes:
    """A listing page in the service's compact JSON with spellings a re-serialisation would
    change: numbers (1.0, 1.10, 1E2, -0.0), escapes (\\u00e9, \\/), members out of order."""
    item = json.loads(CAPTURES["one_gameprogress"].body)["achievements"][0]
    text = json.dumps(item, separators=(",", ":"))
    variants = []
    for n, spelling in enumerate(["1.0", "1.10", "1E2", "-0.0"]):
        entry = text.replace('"id":"5"', f'"id":"{900 + n}"', 1)
        entry = entry.replace('"name":"Your Team is Your Weapon"', '"name":"Caf\\u00e9 \\/ \\"quoted\\""', 1)
        variants.append(entry[:-1] + f',"weight":{spelling}}}')
    return ('{"pagingInfo":{"totalRecords":4,"continuationToken":null},"achievements":[' + ",".join(variants)
            + "]}").encode()


SPELLED_PATH = f"/users/xuid({XUID + 5})/achievements?titleId=219630713"


def test_spelled_body_is_what_it_claims():
    body = spelled_body().decode()
    for spelling in ('"weight":1.0}', '"weight":1.10}', '"weight":1E2}', '"weight":-0.0}', "\\u00e9", "\\/"):
        assert spelling in body
    assert json.loads(body)["achievements"][2]["weight"] == 100.0


@pytest.mark.e2e
def test_real_bodies_survive_record_then_load_with_every_token(tmp_path):
    """The real captured bodies (pretty-printed by the capturing tools) and a compact body with
    unusual spellings, recorded through mitmdump: loaded back they are the same values, and the
    file holds each body's tokens exactly as the service sent them, in its order."""
    def serve(method, path, headers, body):
        if path == SPELLED_PATH:
            return 200, {"Content-Type": "application/json"}, spelled_body()
        return serve_captures(method, path, headers, body)

    cassettes, sent = tmp_path / "cassettes", []
    served = {}
    with Upstream(serve) as up:
        with Mitmdump(tmp_path, achievements_mode="record", achievements_upstream=up.url,
                      achievements_cassettes=cassettes) as proxy:
            for key, c in CAPTURES.items():
                reply = proxy.request(c.url_path, credentials(c.xuid, sent), contract=c.contract)
                assert reply.status == 200 and reply.body == c.body, key
                served[c.url_path, c.contract] = c.body
            reply = proxy.request(SPELLED_PATH)
            assert reply.status == 200
            served[SPELLED_PATH, "2"] = spelled_body()
        out = proxy.stop()
    assert len(up.requests) == len(served), out[-2000:]
    files = sorted(cassettes.rglob("*.yaml"))
    texts = {f: f.read_text(encoding="utf-8") for f in files}
    bodies = {}
    for f in files:
        doc = cassette.load_file(f)
        data = f.read_bytes()
        as_yaml = yaml.load(data, Loader=yaml.CSafeLoader)  # valid YAML ...
        assert json.loads(data[data.index(b"{"):]) == doc  # ... and valid JSON
        if b"1E2" not in data:  # YAML 1.1 reads a number with an exponent and no dot as a string
            assert as_yaml == doc
        for i in doc["interactions"]:
            url, contract = i["request"]["url"], i["request"]["headers"]["x-xbl-contract-version"]
            bodies[url[url.index("/users/"):], contract] = (f, i["response"]["body"])
    assert bodies.keys() == served.keys()
    for key, raw in served.items():
        f, body = bodies[key]
        assert body == json.loads(raw), key
        assert holds_run(tokens(texts[f]), tokens(raw.decode("utf-8"))), key
    everything = "".join(texts.values())
    assert max(len(line.encode()) for line in everything.splitlines()) <= MAX_LINE
    listed = sum(len(json.loads(raw).get("achievements") or json.loads(raw).get("titles") or [])
                 for raw in served.values())
    lines_with_one_item = sum(1 for line in everything.splitlines()
                              if line.startswith("    ") and line.strip().rstrip(",").startswith("{"))
    assert lines_with_one_item == listed


# --------------------------------------------------------------------------------------------
# Files written by earlier builds, the written form's own promises


def interaction(n: int, body_text: str) -> dict:
    return {"recorded_at": "2026-11-27T12:00:00Z",
            "request": {"method": "GET", "url": f"https://achievements.xboxlive.com{BASE}?titleId={n}",
                        "headers": {"x-xbl-contract-version": "2"}},
            "response": {"status": 200, "headers": {"content-type": "application/json"}, "latency_ms": 12.5,
                         "body": json.loads(body_text)}}


def written(path: Path, raws: list[str]) -> bytes:
    """A file as the recorder writes it: each body's line made from the service's text."""
    cassette.forget(path)
    interactions = [interaction(n, raw) for n, raw in enumerate(raws)]
    for i, raw in zip(interactions, raws):
        cassette.remember_line(path, i, cassette.interaction_line(i, cassette.raw_json(raw)))
    cassette.update_file(path, lambda _old: {"xblreplay": 1, "interactions": interactions})
    cassette.forget(path)
    return path.read_bytes()


RAWS = [CAPTURES["one_gameprogress"].body.decode(), spelled_body().decode(),
        CAPTURES["one_recent_progress"].body.decode(), '{"achievements":[],"pagingInfo":{"totalRecords":0}}']


def test_a_file_written_one_interaction_per_line_loads_and_is_laid_out_anew_token_for_token(tmp_path):
    new = written(tmp_path / "new.yaml", RAWS)
    assert new.count(b"\n") > 4 * len(RAWS)  # the items have lines of their own
    # The form of earlier builds: each interaction on one line (this file less its item breaks).
    old = re.sub(rb"\n {3,}", b"", new).replace(b"one achievement per line", b"one interaction per line")
    assert old.count(b"\n") == 6 + len(RAWS)  # header, braces, version, "interactions", its bracket
    path = tmp_path / "old.yaml"
    path.write_bytes(old)
    assert cassette.load_file(path) == cassette.load_file(tmp_path / "new.yaml")
    cassette.forget(path)
    cassette.update_file(path, lambda doc: doc)  # a rewrite by a later recording
    assert path.read_bytes() == new


def test_rewriting_keeps_lines_and_unchanged_data_keeps_the_bytes(tmp_path):
    path = tmp_path / "a.yaml"
    first = written(path, RAWS)
    cassette.update_file(path, lambda doc: doc)
    assert path.read_bytes() == first
    # Another recording replaces one interaction: every other line stays as it was.
    changed = RAWS[1].replace('"weight":1.10', '"weight":2.10')
    replacement = interaction(1, changed)
    line = cassette.interaction_line(replacement, cassette.raw_json(changed))
    cassette.remember_line(path, replacement, line)
    cassette.update_file(path, lambda doc: {**doc, "interactions": [doc["interactions"][0], replacement,
                                                                     *doc["interactions"][2:]]})
    diff = [d for d in difflib.ndiff(first.decode().splitlines(), path.read_text().splitlines()) if d[:1] in "+-"]
    assert len(diff) == 2 and '"weight":1.10' in diff[0] and '"weight":2.10' in diff[1], diff


DATASETS = {"xblreplay": 1, "datasets": [
    {"xuid": 2533274800000001, "shape": "V2", "locale": "en-US", "titles": [
        {"id": 1234, "name": "Sample Game", "scid": "00000000-0000-0000-0000-0000000004d2", "achievements": [
            {"id": n, "name": f"Entry {n}", "gamerscore": 10, "unlocked": "2024-01-02T03:04:05.0000000Z"}
            for n in range(1, 6)]},
        {"id": 99, "achievements": []}]}]}


def test_written_datasets_have_a_compact_entry_per_line_and_errors_name_its_line(tmp_path):
    path = tmp_path / "d.yaml"
    cassette.write_atomic(path, DATASETS)
    text = path.read_text()
    assert cassette.load_file(path) == DATASETS
    assert yaml.safe_load(text) == DATASETS
    entries = [json.loads(line.strip().rstrip(",")) for line in text.splitlines() if '"gamerscore"' in line]
    assert entries == DATASETS["datasets"][0]["titles"][0]["achievements"]
    title_line = next(n for n, line in enumerate(text.splitlines(), 1) if '"Sample Game"' in line)
    assert '"achievements": [' in text.splitlines()[title_line - 1]  # a title's own keys before its entries
    # A bad entry is reported at its own line, and a broken line too.
    broken = text.replace('"gamerscore": 10, "id": 4', '"gamerscoer": 10, "id": 4')
    path.write_text(broken)
    with pytest.raises(CassetteError) as err:
        cassette.load_file(path)
    assert err.value.line == next(n for n, line in enumerate(broken.splitlines(), 1) if "gamerscoer" in line)
    lines = text.splitlines()
    at = next(n for n, line in enumerate(lines) if '"id": 2,' in line)
    lines[at] = lines[at].rstrip(",")  # a comma lost between two entries
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CassetteError) as err:
        cassette.load_file(path)
    assert err.value.line in (at + 1, at + 2), (err.value.line, at + 1)


# --------------------------------------------------------------------------------------------
# Block YAML without anchors


def anchors_and_aliases(text: str) -> list[str]:
    events = yaml.parse(text, Loader=yaml.SafeLoader)
    return [f"{type(e).__name__} {e.anchor} line {e.start_mark.line + 1}" for e in events
            if getattr(e, "anchor", None) is not None]


def test_the_example_cassette_has_no_anchors_or_aliases():
    example = REPO / "cassettes" / "example" / "example.yaml"
    assert anchors_and_aliases(example.read_text(encoding="utf-8")) == []
    assert anchors_and_aliases("a: &x [1]\nb: *x\n")  # the check sees them when they are there


def block_yaml_dumpers() -> list[tuple[str, type]]:
    """Every call in the package that writes YAML (yaml.dump, safe_dump, dump_all, ...) and the
    Dumper it names (None when it names none)."""
    import importlib

    found = []
    for source in sorted((REPO / "addons" / "xblreplay").rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        module = None
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "yaml"
                    and node.func.attr in ("dump", "dump_all", "safe_dump", "safe_dump_all", "emit", "serialize")):
                dumper = next((k.value for k in node.keywords if k.arg == "Dumper"), None)
                if module is None:
                    name = ".".join(source.relative_to(REPO / "addons").with_suffix("").parts)
                    module = importlib.import_module(name)
                cls = getattr(module, dumper.id) if isinstance(dumper, ast.Name) else None
                found.append((f"{source.relative_to(REPO)}:{node.lineno}", cls))
    return found


def test_nothing_the_project_writes_in_block_yaml_has_anchors():
    shared = [3, 5]
    doc = {"datasets": [{"titles": [{"achievements": [{"id": 1, "progress": shared}, {"id": 2, "progress": shared}]}]}]}
    assert "&id001" in yaml.dump(doc, Dumper=yaml.SafeDumper)  # what a stock dumper does with shared values
    dumpers = block_yaml_dumpers()
    for where, cls in dumpers:
        assert cls is not None, f"{where}: yaml is written without a Dumper that refuses aliases"
        text = yaml.dump(doc, Dumper=cls, sort_keys=False, default_flow_style=None)
        assert anchors_and_aliases(text) == [], (where, text)
        assert yaml.safe_load(text) == doc

