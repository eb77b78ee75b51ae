"""What the pytest plugin's shared, rewound proxy saves: N tests on one cassette run with the plugin
(one `python -m pytest` of a project outside the checkout, one mitmdump rewound between tests)
against N bare `mitmdump` starts, each until its first answer, and stops. Prints the median wall
time of each over a few rounds, and the ratio.

    .venv/bin/python benchmarks/bench_pytest_plugin.py [--tests 100] [--rounds 3] [--cassettes DIR]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "addons"))

from xblreplay.pytest_plugin.launcher import MitmdumpProcess  # noqa: E402

XUID = 2533274800000001
AUTH = "XBL3.0 x=3141592653589793238;eyJhbGciOiJSUzI1NiJ9.dGVzdA.c2ln"
PATH = f"/users/xuid({XUID})/achievements?titleId=1717113201&maxItems=5"

TEST_FILE = f'''
import http.client, ssl
import pytest

@pytest.mark.achievements(cassettes="cassettes_in_use")
@pytest.mark.parametrize("n", range({{tests}}))
def test_listing(achievements_proxy, n):
    ctx = ssl.create_default_context(cafile=str(achievements_proxy.ca_cert))
    host, port = achievements_proxy.proxy_url.removeprefix("http://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
    conn.set_tunnel("achievements.xboxlive.com", 443)
    conn.request("GET", "{PATH}", headers={{{{"Authorization": "{AUTH}", "x-xbl-contract-version": "2"}}}})
    assert conn.getresponse().status == 200
    conn.close()
'''


def first_answer(proxy: MitmdumpProcess) -> int:
    ctx = ssl.create_default_context(cafile=str(proxy.ca))
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, context=ctx, timeout=30)
    conn.set_tunnel("achievements.xboxlive.com", 443)
    try:
        conn.request("GET", PATH, headers={"Authorization": AUTH, "x-xbl-contract-version": "2"})
        return conn.getresponse().status
    finally:
        conn.close()


def with_plugin(work: Path, cassettes: Path, tests: int) -> float:
    project = work / "project"
    if not project.exists():
        project.mkdir()
        shutil.copytree(cassettes, project / "cassettes_in_use")
        (project / "test_bench.py").write_text(TEST_FILE.format(tests=tests))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0 or f"{tests} passed" not in done.stdout:
        raise SystemExit(f"the plugin run failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return took


def bare(work: Path, cassettes: Path, tests: int) -> float:
    confdir = work / "bare-conf"  # one CA for every start, as the plugin's processes share one
    started = time.perf_counter()
    for n in range(tests):
        proxy = MitmdumpProcess(confdir, work / "bare.out", {"achievements_cassettes": str(cassettes),
                                                             "flow_detail": 0})
        try:
            proxy.start(60)
            status = first_answer(proxy)
        finally:
            proxy.stop()
        if status != 200:
            raise SystemExit(f"bare start {n}: status {status}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cassettes", type=Path, default=REPO / "cassettes" / "example")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        work = Path(tmp)
        plugin, plain = [], []
        for r in range(args.rounds):
            plugin.append(with_plugin(work, args.cassettes, args.tests))
            plain.append(bare(work, args.cassettes, args.tests))
            print(f"round {r + 1}: plugin {plugin[-1]:.2f} s, bare {plain[-1]:.2f} s", flush=True)
    p, b = statistics.median(plugin), statistics.median(plain)
    print(f"{args.tests} tests on {args.cassettes.name}, median of {args.rounds} rounds:")
    print(f"  with the plugin (one pytest run, one mitmdump rewound per test): {p:.2f} s  ({p / args.tests * 1000:.0f} ms a test)")
    print(f"  bare mitmdump start + first answer + stop, {args.tests} times:     {b:.2f} s  ({b / args.tests * 1000:.0f} ms a test)")
    print(f"  ratio bare / plugin: {b / p:.1f}x")


if __name__ == "__main__":
    main()
