"""Synthetic cassettes for the proxy benchmark: one dataset of `size` achievements written with
benchmarks/bench_engine.py's `make_entry` (one xuid, 50 achievements per title, titles
100000...) in the JSON form ('# bulk dataset' + compact JSON, YAML's JSON subset).

Each is written once into a cache directory, under a name that carries a hash of
bench_engine.py, so a change to the generator writes new files; a file appears only when
complete (written aside, then renamed). Generation runs in a child interpreter so the
benchmark's own process (the loader) keeps a small heap.

    python benchmarks/proxybench/cassettes.py SIZE DIR     # writes DIR/bench.yaml
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
GENERATOR = BENCHMARKS / "bench_engine.py"


def cassette_dir(cache: Path, size: int) -> Path:
    """The directory holding the `size` cassette, written first if it is not in `cache` yet."""
    tag = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:10]
    d = cache / f"{size}-json-{tag}"
    if not (d / "bench.yaml").is_file():
        t0 = time.perf_counter()
        print(f"writing the {size}-achievement cassette into {d} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, str(size), str(d)], check=True)
        print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return d


def _write(size: int, d: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    from bench_engine import make_entry

    d.mkdir(parents=True, exist_ok=True)
    doc = {"xblreplay": 1, "datasets": [make_entry(size)]}
    tmp = d / "bench.yaml.part"
    tmp.write_text("# bulk dataset\n" + json.dumps(doc, separators=(",", ":")))
    tmp.rename(d / "bench.yaml")


if __name__ == "__main__":
    _write(int(sys.argv[1]), Path(sys.argv[2]))
