"""A load that leaves the process scattered is copied into fresh memory: the copy answers as the
dataset it replaces, keeps its R7 item check, and is made only when the load grew the process
past the bound (three times the cassette bytes read)."""

from __future__ import annotations

import shutil
from pathlib import Path

from xblreplay import DEFAULT_RULES_DIR, memory
from xblreplay.contract import Validator
from xblreplay.replay import Replayer

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "cassettes" / "example"
VALIDATOR = Validator.from_rules(DEFAULT_RULES_DIR)
HEADERS = {"authorization": "XBL3.0 x=1;t", "x-xbl-contract-version": "4", "accept-language": "en-US"}
URLS = [
    "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?maxItems=5",
    "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?titleId=1717113201&orderBy=UnlockTime",
    "https://achievements.xboxlive.com/users/xuid(2533274800000001)/achievements?unlockedOnly=true&skipItems=2",
]


def answers(replayer: Replayer) -> list[tuple[int, bytes]]:
    out = []
    for url in URLS:
        _, answer = replayer.handle("GET", url, HEADERS)
        out.append((answer.status, answer.body_bytes()))
    return out


def test_a_copied_dataset_answers_as_the_one_it_replaces(monkeypatch, tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "c")
    plain = Replayer.from_dir(VALIDATOR, tmp_path / "c")
    copies = []
    monkeypatch.setattr(memory, "scattered", lambda before, loaded: True)
    real_copy = memory.copy_fresh
    monkeypatch.setattr(memory, "copy_fresh", lambda *a, **k: (copies.append(a), real_copy(*a, **k)))
    copied = Replayer.from_dir(VALIDATOR, tmp_path / "c")
    assert len(copies) == 1
    assert copied.store is not plain.store and copied.store.item_check is not None
    assert copied.store.item_check == copied.validator.items_errors
    assert answers(copied) == answers(plain)
    assert all(status == 200 for status, _ in answers(copied))


def test_the_copy_is_made_only_past_the_bound(monkeypatch):
    sizes = iter([])
    monkeypatch.setattr(memory, "resident", lambda: next(sizes))  # the size after the load
    mb = 2**20
    sizes = iter([1000 * mb])  # grown 900 MB for 100 MB read: 9x
    assert memory.scattered(100 * mb, 100 * mb)
    sizes = iter([300 * mb])  # grown 200 MB for 100 MB read: 2x
    assert not memory.scattered(100 * mb, 100 * mb)
    sizes = iter([150 * mb])  # 50 MB: below the least growth worth a copy, whatever the file
    assert not memory.scattered(100 * mb, 1 * mb)
    assert not memory.scattered(None, 100 * mb)


class Box:
    pass


def test_copy_fresh_puts_back_what_it_does_not_copy():
    holder, value = Box(), Box()
    value.data, value.check = [1, 2, {"a": 3}], (lambda: "kept")
    holder.store = value
    memory.copy_fresh(holder, "store", detached=("check",))
    assert holder.store is not value and holder.store.data == [1, 2, {"a": 3}]
    assert holder.store.check is value.check and value.check() == "kept"
