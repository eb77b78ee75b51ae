"""A run of titles taken at once is filed, identified and named as the titles taken one by one
would be."""

from __future__ import annotations

import random
from array import array

import pytest

from xblreplay.engine import filing
from xblreplay.engine.categories import ALL_CATEGORIES, per_category
from xblreplay.engine.identity import Identities
from xblreplay.engine.texts import Texts


def run(seed: int) -> tuple[list[int], list[int], bytes]:
    rng = random.Random(seed)
    titles = [rng.choice((1, 2, 3, 4)) for _ in range(12)]  # titles repeat
    sizes = [rng.choice((0, 1, 3, 7)) for _ in titles]
    pick = rng.choice(([0], [0, 1], ALL_CATEGORIES))
    return titles, sizes, bytes(rng.choice(pick) for _ in range(sum(sizes)))


@pytest.mark.parametrize("seed", range(8))
def test_a_run_is_filed_as_each_position_would_be(seed):
    titles, sizes, categories = run(seed)
    by_category, by_title = per_category(), {2: per_category()}
    by_title[2][0].append(3)  # positions filed before the run
    by_category[0].append(3)
    filing.file_run(by_category, by_title, titles, 10, sizes, categories)
    owner = [t for t, n in zip(titles, sizes) for _ in range(n)]
    for c in ALL_CATEGORIES:
        mine = [10 + i for i, k in enumerate(categories) if k == c]
        assert list(by_category[c]) == ([3] if c == 0 else []) + mine
        for t in set(titles):
            before = [3] if (t, c) == (2, 0) else []
            assert list(by_title[t][c]) == before + [p for p in mine if owner[p - 10] == t]
    assert set(by_title) == set(titles) | {2}


@pytest.mark.parametrize("numbers, sizes", [
    ([1, 2, 3, 7, 8], [3, 0, 2]),  # each title's ids run on by one
    ([1, 2, 3, 9, 7, 8], [3, 0, 3]),  # one does not
    ([5, 1, 2], [1, 2]),
    ([2**63 - 1, 1], [1, 1]),
])
@pytest.mark.parametrize("shape", ["V1", "V2"])
def test_a_run_of_identities_is_found_as_blocks_of_each_title_are(numbers, sizes, shape):
    keys = [7, 8, 7][:len(sizes)] if shape == "V1" else ["a", "b", "a"][:len(sizes)]
    at_once, each = Identities(shape), Identities(shape)
    at_once.add_run(keys, array("q", numbers), sizes, 100)
    start = 0
    for key, n in zip(keys, sizes):
        each.add_block(key, array("q", numbers[start:start + n]), 100 + start)
        start += n
    for key in set(keys):
        for number in [*numbers, 0, 4, 6, 10]:
            ident = (key, str(number) if shape == "V2" else number)
            assert at_once.get(ident) == each.get(ident)
    assert at_once.get((keys[0], str(numbers[0]) if shape == "V2" else numbers[0])) == 100


def test_blank_rows_read_empty_between_texts():
    texts = Texts()
    texts.blank(3)
    texts.extend(["ab", "", "c"])
    texts.blank(2)
    texts.extend(["d"])
    assert [texts[i] for i in range(len(texts))] == ["", "", "", "ab", "", "c", "", "", "d"]
