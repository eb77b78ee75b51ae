"""What serving keeps stays small: the JSON texts of a title, written once and kept for every
later page of its items, hold their own length and not a writer's buffer."""

from __future__ import annotations

import tracemalloc

from xblreplay.engine import DatasetStore

XUID = 2533274800000001
TITLES = 400


def test_title_texts_kept_at_their_size() -> None:
    store = DatasetStore()
    store.add_hand_dataset({"xuid": XUID, "shape": "V2", "titles": [
        {"id": 1829000000 + n, "name": f"Title {n}", "achievements": [{"id": 1, "gamerscore": 5}]}
        for n in range(TITLES)]})
    (dataset,) = store._datasets.values()
    rows = dataset._rows
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        texts = [rows.title_json(t) for t in range(TITLES)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert texts[3] == (b'"%s"' % rows.title_scids[3].encode(), b'"Title 3"')
    # two short texts and a table slot per title: well under a kilobyte (a 4 KiB writer buffer
    # kept per text would be 8 KiB a title)
    assert grown / TITLES < 1024, grown / TITLES
