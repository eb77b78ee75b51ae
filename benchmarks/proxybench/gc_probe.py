"""mitmproxy script: times every cyclic-GC collection of the proxy while it serves, and prints
one summary line per generation when mitmdump exits (stdout, so it lands in the proxy's log):

    gc_probe gen=G count=N total_ms=T max_ms=M

Collections during start-up (dataset load) are not counted: the callback is installed once the
proxy is running. Its own cost is two perf_counter() calls per collection.
"""

import gc
import time

_start: dict[int, float] = {}
_stats = {g: [0, 0.0, 0.0] for g in (0, 1, 2)}  # count, total ms, max ms


def _on_gc(phase: str, info: dict) -> None:
    g = info["generation"]
    if phase == "start":
        _start[g] = time.perf_counter()
        return
    ms = (time.perf_counter() - _start.pop(g, time.perf_counter())) * 1000
    s = _stats[g]
    s[0] += 1
    s[1] += ms
    s[2] = max(s[2], ms)


def running() -> None:
    gc.callbacks.append(_on_gc)


def done() -> None:
    for g, (count, total, worst) in _stats.items():
        print(f"gc_probe gen={g} count={count} total_ms={total:.1f} max_ms={worst:.1f}", flush=True)
