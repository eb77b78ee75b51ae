"""Malicious cassettes: each is refused with one `FILE:LINE: reason`, quickly and in little memory,
by `xblreplay lint` and by a real mitmdump at start-up.

Every run of a hostile cassette happens in a child process started by a fresh Python process that
limits the child's address space (so a regression cannot take the machine), kills it after the
time allowed, and reports the child's peak RSS (getrusage of its waited-for children)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from proxyharness import REPO, Mitmdump
from xblreplay import cassette
from xblreplay.bounds import MAX_INT_DIGITS, MAX_JSON_DEPTH, MAX_YAML_ALIAS_EXPANSION

SECONDS = 10
PEAK_RSS_MB = 500
ADDRESS_SPACE = 2 << 30  # the child's limit: far above the 500 MB allowed, far below the machine
TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ")
MITMPROXY_LINES = re.compile(r"Loading script |HTTP\(S\) proxy( \([a-z ]+ mode\))? listening at |"
                             r"^Errors? logged during startup, exiting\.\.\.$")
USERHASH = "ab" * 32

# Runs argv (JSON in argv[1]) under an address-space limit for at most argv[2] seconds; prints
# the exit status, the time taken, the output and the child's peak RSS.
RUNNER = textwrap.dedent("""
    import json, resource, subprocess, sys, time
    argv, seconds, limit, env = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    def bound():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=bound, env=env)
    try:
        out, _ = child.communicate(timeout=seconds)
        status = child.returncode
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        status = None
    took = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"status": status, "took": took, "peak_mb": peak / 1024,
                      "out": out.decode("utf-8", "replace")}))
""")


@dataclass
class Run:
    status: int | None  # None: killed after SECONDS
    took: float
    peak_mb: float
    out: str


def bounded(argv: list[str], env: dict[str, str] | None = None, seconds: float = SECONDS) -> Run:
    env = {**os.environ, "PYTHONPATH": str(REPO / "addons"), **(env or {})}
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(argv), str(seconds), str(ADDRESS_SPACE),
                           json.dumps(env)], capture_output=True, text=True, timeout=seconds + 30, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return Run(**json.loads(done.stdout))


def lint(directory: Path, env: dict[str, str] | None = None) -> Run:
    return bounded([sys.executable, "-m", "xblreplay.cli", "lint", str(directory)], env)


def start_proxy(workdir: Path, directory: Path) -> Run:
    proxy = Mitmdump(workdir, achievements_cassettes=directory)
    proxy.confdir.mkdir(parents=True, exist_ok=True)
    return bounded(proxy.argv())


def own_lines(out: str) -> list[str]:
    lines = [TIMESTAMP.sub("", line) for line in out.splitlines() if line.strip()]
    return [line for line in lines if not MITMPROXY_LINES.search(line)]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth occurrence of ``needle`` in ``text``."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    return text.count("\n", 0, at) + 1


# --- the cassettes: each writes itself into a directory and says where and why it is refused ----

@dataclass
class Refusal:
    file: Path
    line: int
    reason: str


ALIASES = (f"YAML aliases repeat more than {MAX_YAML_ALIAS_EXPANSION:,} nodes and characters "
           "(every alias counts as a copy of what it names)")
OUTSIDE = "symbolic link leads outside the cassette directory (to {}): only files inside it are read"
LONG_INT = "integer of {} digits: more than the %d digits any value here can have" % MAX_INT_DIGITS


def billion_laughs(d: Path) -> Refusal:
    """Ten levels of ten aliases each to the level before, in a recorded body (free-form), and
    the last level again where the schema wants a string: 10**9 'lol's written out."""
    lines = ["xblreplay: 1", "interactions:",
             "  - request: {method: GET, url: 'https://achievements.xboxlive.com/users/xuid(1)/achievements'}",
             "    response:", "      status: 200", "      body:",
             "        lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"        lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines += ["recorded_at: *l9"]
    text = "\n".join(lines) + "\n"
    (d / "x.yaml").write_text(text)
    # Every alias is a copy of what it names (one per node, one per character of a scalar): the
    # refusal names the line of the alias that takes the total past the bound.
    size, total = 1 + 10 * (1 + len("lol")), 0
    for level in range(1, 10):
        total += 10 * size
        if total > MAX_YAML_ALIAS_EXPANSION:
            break
        size = 1 + 10 * size
    return Refusal(d / "x.yaml", line_of(text, f"lol{level}:"), ALIASES)


def merge_key_doubling(d: Path) -> Refusal:
    """Merge keys that merge the level before twice: each level doubles what the mapping holds."""
    lines = ["xblreplay: 1", "m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 41)]
    text = "\n".join(lines) + "\n"
    (d / "x.yaml").write_text(text)
    size, total = 1 + 2 * (1 + 1) + 2 * (1 + 1), 0  # {a: 1, b: 2}: a mapping, two keys, two values
    for level in range(1, 41):
        # {<<: [*m, *m]}: a mapping, its key "<<", a sequence, and two copies of the level before
        total += 2 * size
        if total > MAX_YAML_ALIAS_EXPANSION:
            break
        size = 1 + (1 + 2) + 1 + 2 * size
    return Refusal(d / "x.yaml", line_of(text, f"m{level}:"), ALIASES)


def recursive_alias(d: Path) -> Refusal:
    text = "xblreplay: 1\ndatasets: &loop\n  - *loop\n"
    (d / "x.yaml").write_text(text)
    return Refusal(d / "x.yaml", line_of(text, "- *loop"), "YAML alias to a collection that contains it: recursive data is not read")


def symlink_to_dev_zero(d: Path) -> Refusal:
    os.symlink("/dev/zero", d / "x.yaml")
    return Refusal(d / "x.yaml", 0, OUTSIDE.format("/dev/zero"))


def fifo(d: Path) -> Refusal:
    os.mkfifo(d / "x.yaml")
    return Refusal(d / "x.yaml", 0, "not a regular file (a FIFO): only regular files are read")


def json_100k_deep(d: Path) -> Refusal:
    n = 100_000
    text = '# recorded\n{"xblreplay": 1,\n "datasets": ' + "[" * n + "]" * n + "}\n"
    (d / "x.yaml").write_text(text)
    return Refusal(d / "x.yaml", line_of(text, "["), f"nested more than {MAX_JSON_DEPTH} levels deep")


def yaml_deep_blocks(d: Path) -> Refusal:
    """Block sequences 600 deep: past the bound, within libyaml's own limit of 1,000 levels."""
    text = "xblreplay: 1\ndatasets:\n" + "".join(" " * i + "-\n" for i in range(1, 600))
    (d / "x.yaml").write_text(text)
    # The top mapping is level 1; the sequence opened on line n (n >= 3) is level n - 1.
    return Refusal(d / "x.yaml", MAX_JSON_DEPTH + 2, f"nested more than {MAX_JSON_DEPTH} levels deep")


def yaml_100k_deep_flow(d: Path) -> Refusal:
    n = 100_000
    text = "xblreplay: 1\ndatasets:\n  " + "[" * n + "]" * n + "\n"
    (d / "x.yaml").write_text(text)
    return Refusal(d / "x.yaml", line_of(text, "["), f"nested more than {MAX_JSON_DEPTH} levels deep")


def yaml_100k_digit_integer(d: Path) -> Refusal:
    digits = "7" * 100_000
    text = f"xblreplay: 1\nbindings:\n  - userhash_sha256: {USERHASH}\n    xuid: {digits}\n"
    (d / "x.yaml").write_text(text)
    return Refusal(d / "x.yaml", line_of(text, digits), LONG_INT.format(len(digits)))


def json_100k_digit_integer(d: Path) -> Refusal:
    digits = "7" * 100_000
    text = f'{{"xblreplay": 1,\n "bindings": [{{"userhash_sha256": "{USERHASH}",\n   "xuid": {digits}}}]}}\n'
    (d / "x.yaml").write_text(text)
    return Refusal(d / "x.yaml", line_of(text, digits), LONG_INT.format(len(digits)))


def symlink_outside(d: Path) -> Refusal:
    secret = d.parent / f"{d.name}-outside" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text("xblreplay: 1\n")
    os.symlink(secret, d / "x.yaml")
    return Refusal(d / "x.yaml", 0, OUTSIDE.format(os.path.realpath(secret)))


def symlinked_directory_loop(d: Path) -> Refusal:
    (d / "sub").mkdir()
    (d / "sub" / "ok.yaml").write_text("xblreplay: 1\n")
    os.symlink("..", d / "sub" / "up")
    return Refusal(d / "sub" / "up", 0, f"symbolic link loop: leads back to {os.path.realpath(d)}, a directory it is in")


CASES: dict[str, Callable[[Path], Refusal]] = {
    "billion-laughs": billion_laughs,
    "merge-key-doubling": merge_key_doubling,
    "recursive-alias": recursive_alias,
    "symlink-to-dev-zero": symlink_to_dev_zero,
    "fifo": fifo,
    "json-100k-deep": json_100k_deep,
    "yaml-deep-blocks": yaml_deep_blocks,
    "yaml-100k-deep-flow": yaml_100k_deep_flow,
    "yaml-100k-digit-integer": yaml_100k_digit_integer,
    "json-100k-digit-integer": json_100k_digit_integer,
    "symlink-outside": symlink_outside,
    "symlinked-directory-loop": symlinked_directory_loop,
}


@pytest.mark.parametrize("case", CASES)
def test_a_malicious_cassette_is_one_line_from_lint_and_from_the_proxy(tmp_path, case):
    directory = tmp_path / "cassettes"
    directory.mkdir()
    refusal = CASES[case](directory)
    expected = f"{refusal.file}:{refusal.line}: {refusal.reason}"

    with ThreadPoolExecutor(2) as pool:  # two independent children: lint and the proxy, side by side
        linting, starting = pool.submit(lint, directory), pool.submit(start_proxy, tmp_path, directory)
        checked, started = linting.result(), starting.result()

    assert checked.status is not None, f"lint still running after {SECONDS} s:\n{checked.out}"
    assert checked.status == 1 and checked.took < SECONDS, checked
    assert "Traceback" not in checked.out, checked.out
    assert checked.peak_mb < PEAK_RSS_MB, checked
    # stdout: the problem; stderr (same pipe, in either order): the count
    assert sorted(checked.out.splitlines()) == sorted([expected, "1 problem(s)"]), checked.out

    assert started.status is not None, f"mitmdump still running after {SECONDS} s:\n{started.out}"
    assert started.status != 0 and started.took < SECONDS, started
    assert "Traceback" not in started.out, started.out
    assert started.peak_mb < PEAK_RSS_MB, started
    lines = own_lines(started.out)
    assert lines == [f"xblreplay: achievements_cassettes: {expected}"], started.out  # besides mitmproxy's banner


# --- what stays readable ----------------------------------------------------------------------

VALID = "xblreplay: 1\nbindings:\n  - {userhash_sha256: %s, xuid: 2533274800000001}\n" % USERHASH


def test_links_inside_the_directory_are_followed_and_each_file_is_read_once(tmp_path):
    (tmp_path / ".shared").mkdir()
    (tmp_path / ".shared" / "kept.yaml").write_text(VALID)  # a hidden directory is not walked...
    os.symlink(".shared/kept.yaml", tmp_path / "linked.yaml")  # ...but a link to a file in it is read
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "own.yaml").write_text(VALID)
    os.symlink("sub", tmp_path / "again")  # the same directory through a link: read once, by its own name
    os.symlink("own.yaml", tmp_path / "sub" / "twin.yaml")
    files = [path for path, _ in cassette.load_dir(tmp_path)]
    assert files == [tmp_path / "linked.yaml", tmp_path / "sub" / "own.yaml"]
    assert cassette.lint(tmp_path) == []


def test_special_files_and_links_without_a_cassette_name_are_not_looked_at(tmp_path):
    (tmp_path / "ok.yaml").write_text(VALID)
    os.mkfifo(tmp_path / "notes.txt")
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink("/", tmp_path / ".root")
    listed = bounded([sys.executable, "-c", "import sys; from xblreplay import cassette; "
                      "print([str(p) for p, _ in cassette.load_dir(sys.argv[1])])", str(tmp_path)])
    assert listed.status == 0 and listed.took < SECONDS, listed
    assert listed.out.strip() == repr([str(tmp_path / "ok.yaml")])


def nested_body(levels: int) -> str:
    """A recorded cassette nesting ``levels`` deep: the top mapping, the interactions, one
    interaction, its response, and a body of lists for the rest."""
    body = "[" * (levels - 4) + "]" * (levels - 4)
    return ('{"xblreplay": 1, "interactions": [{"request": {"method": "GET", "url": "u"}, '
            '"response": {"status": 200, "body": %s}}]}' % body)


def test_the_bounds_are_exact_and_leave_real_cassettes_alone(tmp_path):
    cases = {
        "deepest.yaml": nested_body(MAX_JSON_DEPTH),
        "widest.yaml": VALID.replace("2533274800000001", "18446744073709551615"),  # 20 digits
        "aliases.yaml": "xblreplay: 1\nbindings:\n  - &b {userhash_sha256: %s, xuid: 1}\n" % USERHASH
                        + "".join("  - *b\n" for _ in range(1000)),
        "merges.yaml": ("xblreplay: 1\ndatasets:\n  - xuid: 1\n    titles:\n      - id: 1\n        achievements:\n"
                        "          - &base {id: 1, name: Base, gamerscore: 10}\n"
                        + "".join(f"          - {{<<: *base, id: {i}}}\n" for i in range(2, 2000))),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    docs = dict((path.name, doc) for path, doc in cassette.load_dir(tmp_path))
    assert set(docs) == set(cases)
    assert docs["widest.yaml"]["bindings"][0]["xuid"] == 2**64 - 1
    assert len(docs["aliases.yaml"]["bindings"]) == 1001
    assert [a["id"] for a in docs["merges.yaml"]["datasets"][0]["titles"][0]["achievements"]] == list(range(1, 2000))
    # One more level, one more digit: refused, in either form.
    (tmp_path / "deepest.yaml").write_text(nested_body(MAX_JSON_DEPTH + 1))
    (tmp_path / "widest.yaml").write_text(cases["widest.yaml"].replace("18446744073709551615", "1" + "0" * MAX_INT_DIGITS))
    (tmp_path / "widest.json.yaml").write_text(
        '{"xblreplay": 1, "bindings": [{"userhash_sha256": "%s", "xuid": 1%s}]}' % (USERHASH, "0" * MAX_INT_DIGITS))
    reasons = {Path(e.file).name: (e.line, e.reason) for e in cassette.lint(tmp_path)}
    assert reasons == {
        "deepest.yaml": (1, f"nested more than {MAX_JSON_DEPTH} levels deep"),
        "widest.yaml": (3, f"integer of {MAX_INT_DIGITS + 1} digits: more than the {MAX_INT_DIGITS} digits any value here can have"),
        "widest.json.yaml": (1, f"integer of {MAX_INT_DIGITS + 1} digits: more than the {MAX_INT_DIGITS} digits any value here can have"),
    }


LOAD = ("import sys\nfrom xblreplay import cassette\ntry:\n    docs = cassette.load_dir(sys.argv[1])\n"
        "except cassette.CassetteError as e:\n    print(e)\nelse:\n    print([doc.get('bindings') for _, doc in docs])")


def test_the_parse_cache_is_no_way_in(tmp_path):
    """A large block-YAML cassette is kept parsed as JSON by content hash. A deep one is refused
    before anything is kept; a kept form that was tampered with (too deep, or a FIFO) is not
    believed: the cassette is parsed again. Run in a bounded child: the cassettes are hostile."""
    cache, good, bad = tmp_path / "cache", tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    padding = "# " + "x" * 1000 + "\n"
    (good / "big.yaml").write_text(VALID + padding * (cassette.CACHE_MIN_BYTES // len(padding) + 1))
    deep = "xblreplay: 1\ndatasets:\n" + "".join(" " * i + "-\n" for i in range(1, 400)) + padding * 300
    (bad / "deep.yaml").write_text(deep)
    assert len(deep) > cassette.CACHE_MIN_BYTES
    env = {"XBLREPLAY_CACHE_DIR": str(cache)}

    refused = bounded([sys.executable, "-c", LOAD, str(bad)], env)
    assert refused.status == 0 and refused.took < SECONDS and refused.peak_mb < PEAK_RSS_MB, refused
    assert refused.out.strip() == f"{bad / 'deep.yaml'}:{MAX_JSON_DEPTH + 2}: nested more than {MAX_JSON_DEPTH} levels deep"
    assert not list(cache.rglob("*.json"))

    expected = repr([[{"userhash_sha256": USERHASH, "xuid": 2533274800000001}]])
    first = bounded([sys.executable, "-c", LOAD, str(good)], env)
    assert first.status == 0 and first.out.strip() == expected, first
    (kept,) = cache.rglob("*.json")
    for tamper in ("deep", "fifo"):
        kept.unlink()
        if tamper == "deep":
            kept.write_text("[" * 100_000 + "]" * 100_000)
        else:
            os.mkfifo(kept)
        loaded = bounded([sys.executable, "-c", LOAD, str(good)], env)
        assert loaded.status == 0 and loaded.took < SECONDS and loaded.peak_mb < PEAK_RSS_MB, loaded
        assert loaded.out.strip() == expected, loaded.out


def test_a_file_named_on_its_own_is_read_only_if_regular(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    checked = lint(tmp_path / "pipe.yaml")
    assert checked.status == 1 and checked.took < SECONDS and "Traceback" not in checked.out, checked
    assert sorted(checked.out.splitlines()) == sorted([
        f"{tmp_path / 'pipe.yaml'}:0: not a regular file (a FIFO): only regular files are read", "1 problem(s)"])


def test_the_depth_bound_is_exact_wherever_the_load_is_called_from():
    """JSON text is held to the bound by the parser itself, with the interpreter's recursion
    limit set for the frames above the call: the same levels pass at any depth of the stack."""
    from xblreplay import rulesfile

    def at_depth(frames: int, text: bytes):
        if frames:
            return at_depth(frames - 1, text)
        try:
            rulesfile.load_json(text)
            return "read"
        except rulesfile.Refused as exc:
            return exc.reason

    limit = sys.getrecursionlimit()
    for frames in (0, 100, 600):
        assert at_depth(frames, b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) == "read"
        assert at_depth(frames, b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)) == \
            f"nested more than {MAX_JSON_DEPTH} levels deep"
        assert sys.getrecursionlimit() == limit


def test_numbers_json_does_not_have_are_refused_and_a_latency_is_at_most_ten_minutes(tmp_path):
    recorded = ('{"xblreplay": 1, "interactions": [{"request": {"method": "GET", "url": "u"},\n'
                ' "response": {"status": 200, "latency_ms": %s}}]}')
    (tmp_path / "nan.yaml").write_text(recorded % "NaN")
    (tmp_path / "late.yaml").write_text(recorded % "1e12")
    (tmp_path / "inf.yaml").write_text("xblreplay: 1\ninteractions:\n  - request: {method: GET, url: u}\n"
                                       "    response: {status: 200, latency_ms: .inf}\n")
    reasons = {Path(e.file).name: (e.line, e.reason) for e in cassette.lint(tmp_path)}
    assert reasons == {
        "nan.yaml": (2, "NaN is not a finite number: values here are JSON's"),
        "inf.yaml": (4, ".inf is not a finite number: values here are JSON's"),
        "late.yaml": (2, "interactions/0/response/latency_ms: 1000000000000.0 is greater than the maximum of 600000"),
    }


def test_a_recorded_id_string_of_any_length_loads_and_replays(tmp_path):
    """Strings are not bounded by the loader; the engine reads a numeric id string longer than
    any id can be as not a number instead of asking int() for it (ValueError past 4,300 digits)."""
    from xblreplay import DEFAULT_RULES_DIR
    from xblreplay.replay import Replayer
    from xblreplay.contract.validator import Validator

    def item(ident: str) -> dict:
        return {"id": ident, "serviceConfigId": "00000000-0000-0000-0000-0000000004d2", "name": "x",
                "titleAssociations": [{"name": "t", "id": 1}], "progressState": "NotStarted",
                "progression": {"requirements": [], "timeUnlocked": "0001-01-01T00:00:00.0000000Z"},
                "mediaAssets": [], "platforms": ["Durango"], "isSecret": False, "description": "",
                "lockedDescription": "", "productId": "", "achievementType": "Persistent",
                "participationType": "Individual", "timeWindow": None, "rewards": [],
                "estimatedTime": "00:00:00", "deeplink": None, "isRevoked": False}

    ids = ["1", "9" * 5000, "\u00b2"]  # an ordinary id, one of 5,000 digits, a non-ASCII digit
    body = {"achievements": [item(i) for i in ids], "pagingInfo": {"continuationToken": None, "totalRecords": 3}}
    url = "https://achievements.xboxlive.com/users/xuid(1)/achievements?titleId=1"
    doc = {"xblreplay": 1, "interactions": [{"recorded_at": "2026-01-01T00:00:00Z",
                                             "request": {"method": "GET", "url": url, "headers": {"x-xbl-contract-version": "2"}},
                                             "response": {"status": 200, "headers": {"content-type": "application/json"}, "body": body}}]}
    (tmp_path / "a.yaml").write_text(json.dumps(doc))
    replayer = Replayer.from_dir(Validator.from_rules(DEFAULT_RULES_DIR), tmp_path)
    _check, answer = replayer.handle("GET", url + "&orderBy=Title", {"authorization": "XBL3.0 x=1;t", "x-xbl-contract-version": "2"})
    assert answer.status == 200
    assert sorted(a["id"] for a in answer.body["achievements"]) == sorted(ids)
