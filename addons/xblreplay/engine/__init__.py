"""The dataset engine: semantic replay of GET /users/xuid({xuid})/achievements (R1–R7, R9), the
title history, achievement details and progress updates.

Recorded pages and hand-written cassette datasets are merged into datasets keyed by
(xuid, shape, locale) (R1). A query is answered by applying the service's filters (R3),
ordering (R4) and paging (R5) to the dataset, so queries that were never recorded still get
a faithful answer. Coverage (R2) says whether the dataset proves the complete answer.

Speed: a query costs time proportional to its matching titles and its page, not to the whole
dataset. Each dataset indexes, per title and per category (type x unlocked), the item positions
in dataset order; a query's candidates are a concatenation of those lists, sorted by a
precomputed per-order rank and cached (LRU), so following continuation tokens costs O(page).
Compact hand-written entries are held column-wise (arrays and joined texts, a few bytes an item)
and expanded into wire objects when a page shows them, not kept expanded. With an item check (R7, injected: the engine knows no schema) each item is checked the
first time it is served in a form, and answers carry what was found.

Answer bodies share item objects with the store: consumers treat them as read-only.

Modules: store (the public face), dataset (one dataset's items and caches), identity (R1
identities), filing and categories (position lists), orders (R4 ranks), coverage (R2), history
(title history), updates (progress updates), compact (hand-written entries as columns), texts
(string columns), expand (a compact row's wire form), wire (the wire form of items), verdicts (R7
of served items), locales (R6).
"""

from .dataset import DatasetInfo
from .history import TitleStats
from .locales import DEFAULT_LOCALE, pick_locale
from .store import DatasetStore
from .wire import derived_scid, wire_time

__all__ = [
    "DEFAULT_LOCALE", "DatasetInfo", "DatasetStore", "TitleStats", "derived_scid", "pick_locale", "wire_time",
]
