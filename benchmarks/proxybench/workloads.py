"""The request lists a benchmark run sends, per workload and dataset size.

  repeated  one listing URL, over and over (titleId 100123 when the dataset has it)
  pages     a paging client: titles x skipItems 0,10,20,30,40 with maxItems=10, title after
            title, so every request asks for a page not served before (until the list wraps)
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = "http://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements"
FIRST_TITLE = 100000
PER_TITLE = 50  # bench_engine.make_entry's achievements per title
KINDS = ("repeated", "pages")


@dataclass(frozen=True)
class Workload:
    kind: str
    size: int

    @property
    def name(self) -> str:
        return f"{self.kind} {self.size:,}".replace(",", "_")

    def urls(self) -> list[str]:
        titles = max(1, self.size // PER_TITLE)
        if self.kind == "repeated":
            return [f"{BASE}?titleId={FIRST_TITLE + min(123, titles - 1)}&maxItems=10"]
        return [f"{BASE}?titleId={t}&skipItems={s}&maxItems=10"
                for t in range(FIRST_TITLE, FIRST_TITLE + titles) for s in (0, 10, 20, 30, 40)]


def parse(spec: str, sizes: list[int]) -> list[Workload]:
    """'repeated,pages:100000' -> workloads; a kind without ':SIZE' runs at every size."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, size = item.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown workload {kind!r} (known: {', '.join(KINDS)})")
        out += [Workload(kind, int(size))] if size else [Workload(kind, s) for s in sizes]
    return out
