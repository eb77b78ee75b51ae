"""A page's item written from the columns as read (engine.expand.encoded_at, no Row built) is the
very text of the row read whole (encoded), for every kind of row, in both shapes, with and
without rarity; a row read whole is the one its plain fields and the row beside the columns make."""

from __future__ import annotations

import orjson
import pytest

from test_encoded_rows import entries, store

from xblreplay.engine.compact import Row
from xblreplay.engine.expand import encoded, encoded_at


def _rows(shape: str):
    ds = next(iter(store(shape)._datasets.values()))
    return ds._rows


@pytest.mark.parametrize("shape", ["V1", "V2"])
@pytest.mark.parametrize("rarity", [False, True])
def test_encoded_at_is_encoded_of_the_row(shape: str, rarity: bool) -> None:
    cols = _rows(shape)
    assert len(cols) == len(entries())
    kinds = set()
    for pos in range(len(cols)):
        kinds.add(cols.plain(pos) is None)
        assert encoded_at(cols, pos, shape, rarity) == encoded(cols, cols.row(pos), shape, rarity)
    assert kinds == {True, False}  # rows held whole in the columns and rows held beside them


@pytest.mark.parametrize("shape", ["V1", "V2"])
def test_plain_fields_are_the_row_but_its_rarity(shape: str) -> None:
    cols = _rows(shape)
    for pos in range(len(cols)):
        row, plain = cols.row(pos), cols.plain(pos)
        assert type(row) is Row
        if plain is not None:
            assert row == Row(*plain, None)
        assert row.rarity is None or plain is None


def test_title_json_is_the_title_as_json() -> None:
    cols = _rows("V2")
    for title in range(len(cols.title_ids)):
        assert cols.title_json(title) == (orjson.dumps(cols.title_scids[title]), orjson.dumps(cols.title_names[title]))
        assert cols.title_json(title) is cols.title_json(title)
