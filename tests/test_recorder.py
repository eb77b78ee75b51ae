"""Recorder: file layout, canonical re-recording, refusal to touch broken files, non-blocking
record(), durability under kill -9, concurrent processes, and the flow-file importer."""

from __future__ import annotations

import json
import re
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from xblreplay import DEFAULT_RULES_DIR, cassette
from xblreplay.cassette import files as cassette_files
from xblreplay.recording import Recorder, RecorderProcess, cassette_path
from xblreplay.contract.validator import Validator

ADDONS = Path(__file__).resolve().parents[1] / "addons"
XUID = 2533274800000001
BASE = f"https://achievements.xboxlive.com/users/xuid({XUID})/achievements"


def body_for(n: int, title: int = 1234) -> bytes:
    return json.dumps(
        {
            "achievements": [{"id": str(n), "name": f"Achievement {n}", "titleAssociations": [{"id": title}]}],
            "pagingInfo": {"continuationToken": None, "totalRecords": 1},
        }
    ).encode()


def record(rec: Recorder, url: str, body: bytes, *, latency: float = 12.5, at: str = "2026-11-27T12:00:00Z",
           contract: str = "2", status: int = 200) -> None:
    rec.record("GET", url, {"x-xbl-contract-version": contract, "accept-language": "en-US"}, status,
               {"content-type": "application/json"}, body, "application/json", latency, at)


def interactions(path: Path) -> list[dict]:
    return cassette.load_file(path).get("interactions", [])


# The in-process recorder, and the same recorder in a child process (what the proxy uses).
BOTH = pytest.mark.parametrize("make", [Recorder, RecorderProcess], ids=["thread", "process"])


def test_file_layout_per_xuid_and_title(tmp_path):
    """Files are named from the one reading of the request (the validator's)."""
    validator = Validator.from_rules(DEFAULT_RULES_DIR)

    def where(url: str) -> Path:
        return cassette_path(tmp_path, validator.check_request("GET", url, {}))

    assert where(f"{BASE}?titleId=20,3&maxItems=5") == tmp_path / f"recorded/{XUID}/3_20.yaml"
    assert where(f"{BASE}?titleId=20&titleId=3") == tmp_path / f"recorded/{XUID}/3_20.yaml"  # joined as the service does
    assert where(BASE) == tmp_path / f"recorded/{XUID}/all.yaml"
    assert where(f"https://achievements.xboxlive.com/users/xuid({XUID})/titleachievements?titleId=7") == \
        tmp_path / f"recorded/{XUID}/7.yaml"
    assert where("https://achievements.xboxlive.com/other") == tmp_path / "recorded/other.yaml"
    # titleId values that are not uint32 lists never become file names
    assert where(f"{BASE}?titleId=../../x") == tmp_path / "recorded/other.yaml"
    # a long title list gets a bounded name
    many = where(f"{BASE}?titleId=" + ",".join(str(4000000000 - n) for n in range(400)))
    assert many.parent == tmp_path / f"recorded/{XUID}" and len(many.name) < 64


def test_record_writes_structured_json_and_body_text(tmp_path):
    rec = Recorder(tmp_path)
    record(rec, f"{BASE}?titleId=1234", body_for(1))
    rec.record("GET", f"{BASE}?titleId=1234&maxItems=1", {}, 500, {"content-type": "text/plain"},
               "upstream failure é".encode(), "text/plain", 3.0, "2026-11-27T12:00:00Z")
    assert rec.flush(10)
    rec.close()
    assert not rec.errors
    items = {i["request"]["url"]: i for i in interactions(tmp_path / f"recorded/{XUID}/1234.yaml")}
    assert items[f"{BASE}?titleId=1234"]["response"]["body"] == json.loads(body_for(1))
    assert items[f"{BASE}?titleId=1234&maxItems=1"]["response"]["body_text"] == "upstream failure é"


def test_rerecording_same_data_is_byte_identical(tmp_path):
    urls = [f"{BASE}?titleId=1234&skipItems={n}" for n in range(5, 0, -1)]
    rec = Recorder(tmp_path)
    for n, url in enumerate(urls):
        record(rec, url, body_for(n), at=f"2026-11-27T12:00:0{n}Z")
    rec.flush(10)
    path = tmp_path / f"recorded/{XUID}/1234.yaml"
    first = path.read_bytes()
    # Same exchanges again, later, with other latencies and in another order.
    for n, url in reversed(list(enumerate(urls))):
        record(rec, url, body_for(n), latency=99.0, at="2027-01-01T00:00:00Z")
    rec.flush(10)
    assert path.read_bytes() == first
    keys = [i["request"]["url"] for i in interactions(path)]
    assert keys == sorted(urls)
    # A changed response replaces the entry, with the new time.
    record(rec, urls[0], body_for(42), at="2027-01-01T00:00:00Z")
    rec.close()
    items = {i["request"]["url"]: i for i in interactions(path)}
    assert len(items) == len(urls)
    assert items[urls[0]]["recorded_at"] == "2027-01-01T00:00:00Z"
    assert items[urls[0]]["response"]["body"] == json.loads(body_for(42))
    assert items[urls[1]]["recorded_at"] == "2026-11-27T12:00:01Z"


def test_key_includes_contract_version(tmp_path):
    rec = Recorder(tmp_path)
    record(rec, BASE, body_for(1), contract="2")
    record(rec, BASE, body_for(1), contract="4")
    rec.close()
    got = [i["request"]["headers"]["x-xbl-contract-version"] for i in interactions(tmp_path / f"recorded/{XUID}/all.yaml")]
    assert got == ["2", "4"]


@pytest.mark.parametrize("content", [b"xblreplay: 1\ninteractions: [\n", b"xblreplay: 7\n",
                                     b"xblreplay: 1\nx: !!python/object:os.system {}\n"])
@BOTH
def test_broken_existing_file_is_never_overwritten(tmp_path, content, make):
    path = tmp_path / f"recorded/{XUID}/1234.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    seen = []
    rec = make(tmp_path, on_error=seen.append)
    record(rec, f"{BASE}?titleId=1234", body_for(1))
    record(rec, f"{BASE}?titleId=99", body_for(1))  # another file in the same batch is still written
    rec.close()
    assert path.read_bytes() == content
    assert len(seen) == 1 and isinstance(seen[0], cassette.CassetteError)
    assert seen[0].file == str(path) and "left untouched" in seen[0].reason
    assert list(rec.errors) == seen
    assert len(interactions(tmp_path / f"recorded/{XUID}/99.yaml")) == 1


@BOTH
def test_record_returns_without_waiting_for_disk(tmp_path, make):
    path = tmp_path / f"recorded/{XUID}/1234.yaml"
    rec = make(tmp_path)
    with cassette.file_lock(path):  # the writer cannot write while this is held
        caller = threading.Thread(target=lambda: [record(rec, f"{BASE}?titleId=1234&skipItems={n}", body_for(n))
                                                  for n in range(50)])
        caller.start()
        caller.join(5)
        assert not caller.is_alive(), "record() blocked on the disk"
        assert not rec.flush(0.2)
        assert not path.exists()
    assert rec.flush(10)
    rec.close()
    assert len(interactions(path)) == 50


def test_bindings_recorded_as_sha256(tmp_path):
    import hashlib

    rec = Recorder(tmp_path)
    rec.record("GET", f"{BASE}?titleId=7", {"authorization": "XBL3.0 x=1234567890123;eyJabcdefghijklmnop.qq.rr"},
               200, {}, b"", None, 1.0, "2026-11-27T12:00:00Z")
    rec.record("GET", f"{BASE}?titleId=7&maxItems=2", {"authorization": "XBL3.0 x=99999999999;eyJabcdefghijklmnop.qq.rr"},
               401, {}, b"", None, 1.0, "2026-11-27T12:00:00Z")
    rec.close()
    doc = cassette.load_file(tmp_path / f"recorded/{XUID}/7.yaml")
    assert doc["bindings"] == [{"userhash_sha256": hashlib.sha256(b"1234567890123").hexdigest(), "xuid": XUID}]


CHILD = r"""
import sys
from xblreplay import recording as recorder
rec = getattr(recorder, sys.argv[6])(sys.argv[1])
ns = range(int(sys.argv[2]), 10**9, int(sys.argv[3]))[: int(sys.argv[4])]
print("ready", flush=True)
for n in ns:
    for title in (1, 2, 3):
        url = f"https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?titleId={title}&skipItems={n}"
        rec.record("GET", url, {"x-xbl-contract-version": "2"}, 200, {"content-type": "application/json"},
                   b'{"achievements": [], "n": %d}' % n, "application/json", 1.0, "2026-11-27T12:00:00Z")
    if sys.argv[5] == "flush-each":
        rec.flush()
        print(n, flush=True)
rec.close()
assert not rec.errors, list(rec.errors)
"""


def child(tmp_path: Path, *args) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ADDONS))
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "c"), *map(str, args)],
                            stdout=subprocess.PIPE, text=True, env=env)


def recorded_ns(cassette_dir: Path) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    if not cassette_dir.exists():  # killed before its first write
        return found
    for path, doc in cassette.load_dir(cassette_dir):  # every file parses
        title = int(path.stem)
        for i in doc.get("interactions", []):
            found.setdefault(title, set()).add(i["response"]["body"]["n"])
    return found


def writer_processes(cassette_dir: Path) -> list[int]:
    """Pids of recorder child processes still writing into `cassette_dir`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"xblreplay.recording" in argv and str(cassette_dir).encode() in argv:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("kind", ["Recorder", "RecorderProcess"])
def test_durability_under_kill_9(tmp_path, kind):
    """kill -9 of the recording process at random moments: every file parses and holds every
    interaction confirmed as flushed; a writer child finishes what it has and exits."""
    rng = random.Random(os.getpid())
    confirmed: set[int] = set()
    for run in range(20):
        proc = child(tmp_path, run * 100_000, 1, 10**6, "flush-each", kind)
        assert proc.stdout.readline().strip() == "ready"
        first = ""
        if run % 2:
            # Every other run is killed only once a flush is confirmed, however long a loaded
            # machine takes to start the writer (a child process imports the whole package):
            # kills land both before the first write and in the middle of later ones.
            first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        confirmed |= {int(line) for line in (first + out).split() if line.isdigit()}
        deadline = time.monotonic() + 20
        while writer_processes(tmp_path / "c") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not writer_processes(tmp_path / "c"), "the writer child outlived its parent"
        on_disk = recorded_ns(tmp_path / "c")
        for title in (1, 2, 3):
            missing = confirmed - on_disk.get(title, set())
            assert not missing, f"run {run}: title {title} lost flushed interactions {sorted(missing)[:5]}"
    assert confirmed, "the child never completed a flush"


@pytest.mark.parametrize("kind", ["Recorder", "RecorderProcess"])
def test_two_processes_500_each(tmp_path, kind):
    procs = [child(tmp_path, start, 2, 500, "batched", kind) for start in (0, 1)]
    for proc in procs:
        proc.communicate(timeout=120)
        assert proc.returncode == 0
    on_disk = recorded_ns(tmp_path / "c")
    assert on_disk == {title: set(range(1000)) for title in (1, 2, 3)}


def test_import_flows(tmp_path):
    from mitmproxy import io
    from mitmproxy.test import tflow, tutils

    from xblreplay.mitm.flows import import_flows

    flows = []
    for n, host in enumerate(["achievements.xboxlive.com", "achievements.xboxlive.com", "profile.xboxlive.com"]):
        f = tflow.tflow(resp=tutils.tresp(content=body_for(n), headers=[(b"Content-Type", b"application/json")]))
        f.request.scheme, f.request.host, f.request.port = "https", host, 443
        f.request.path = f"/users/xuid({XUID})/achievements?titleId=1234&skipItems={n}"
        f.request.headers["x-xbl-contract-version"] = "2"
        f.request.headers["Authorization"] = "XBL3.0 x=5555555555;eyJsecretsecretsecret.abc.def"
        flows.append(f)
    flows.append(tflow.tflow())  # no response: not recorded
    flow_file = tmp_path / "flows.mitm"
    with open(flow_file, "wb") as fh:
        writer = io.FlowWriter(fh)
        for f in flows:
            writer.add(f)
    assert import_flows(flow_file, tmp_path / "c") == 2
    path = tmp_path / f"c/recorded/{XUID}/1234.yaml"
    items = interactions(path)
    assert [i["response"]["body"] for i in items] == [json.loads(body_for(0)), json.loads(body_for(1))]
    assert items[0]["request"]["headers"] == {"x-xbl-contract-version": "2"}
    assert items[0]["response"]["latency_ms"] == pytest.approx((flows[0].response.timestamp_end
                                                                - flows[0].request.timestamp_start) * 1000, abs=0.1)
    assert b"eyJsecret" not in path.read_bytes()


def test_bodies_are_written_as_the_service_sent_them_and_kept_byte_for_byte(tmp_path):
    """A one-line JSON body is written verbatim (its own key order), line breaks added only
    between its items; lines already on disk survive a later write by another process unchanged;
    a pretty-printed body loses only its indentation (the service's key order kept). Every form
    loads to the same document."""
    path = tmp_path / f"recorded/{XUID}/1234.yaml"
    service = b'{"pagingInfo": {"totalRecords": 1, "continuationToken": null}, "achievements": [{"name": "Z", "id": "1"}]}'
    rec = Recorder(tmp_path)
    record(rec, f"{BASE}?titleId=1234", service)
    rec.close()
    first = path.read_bytes()
    assert service in re.sub(rb"\n +", b"", first)
    # Another process (no memory of the write) adds an interaction: the first one's lines stay as they were.
    cassette_files._offered.clear()
    cassette_files._written.clear()
    pretty = json.dumps(json.loads(service), indent=2).encode()  # several lines
    rec = Recorder(tmp_path)
    record(rec, f"{BASE}?titleId=1234&maxItems=5", pretty)
    rec.close()
    second = path.read_bytes()
    lines = first.splitlines()
    old_lines = lines[lines.index(b' "interactions": [') + 1:lines.index(b" ]")]
    kept = {line.rstrip(b",") for line in second.splitlines()}
    assert old_lines and all(line.rstrip(b",") in kept for line in old_lines)
    compact = json.dumps(json.loads(service), separators=(",", ":"), ensure_ascii=False).encode()
    assert compact in re.sub(rb"\n +", b"", second)  # "pagingInfo" first, as the service wrote it
    bodies = [i["response"]["body"] for i in interactions(path)]
    assert bodies == [json.loads(service)] * 2
