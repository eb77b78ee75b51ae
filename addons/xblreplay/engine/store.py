"""The dataset store: every dataset known to the proxy, built from recorded pages and hand-written
entries, and the answers of the listing, detail, title history and progress update endpoints."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import datetime
from typing import Any, Callable, Iterator

from .. import answers
from ..model import WARNING, AchievementsQuery, Answer, Violation, r7_item_violations
from . import updates
from .categories import selected
from .coverage import gap
from .dataset import DatasetInfo, _Dataset
from .history import rows
from .locales import DEFAULT_LOCALE, pick_locale
from .report import Origins, TitleCoverage, title_rows
from .undo import Undo
from .verdicts import ItemCheck, form
from .wire import _as_int, derived_scid, paging, wire_time


# Listing answers kept for queries asked again (a few kilobytes each).
ANSWERS_KEPT = 256


class DatasetStore:
    """Every dataset known to the proxy, and the engine that answers queries from them.

    ``item_check``: R7 for served items (see verdicts.ItemCheck); with it, each item is
    checked the first time it is served in a form and every listing or detail answer carries
    the findings of its items (``Answer.items_checked``). The contract's response schemas are
    the usual check (``Replayer`` sets it); the engine itself knows no schema.
    """

    def __init__(self, *, strict_coverage: bool = False, item_check: ItemCheck | None = None) -> None:
        self.strict_coverage = strict_coverage
        self.item_check = item_check
        self._datasets: dict[tuple[int, str, str], _Dataset] = {}
        self._locales: dict[tuple[int, str], list[str]] = {}  # first recorded first (R6 default)
        self.updated: set[int] = set()  # xuids whose data progress updates changed in this run
        self._undo = Undo()  # the items those updates replaced, as loaded
        self._bindings: dict[str, int] = {}
        self._origins: dict[tuple[int, str, str], Origins] = {}  # per dataset, for title_coverage
        self._answers: OrderedDict[tuple, Answer] = OrderedDict()  # listing answers, see answer()

    # -- building

    def _dataset(self, xuid: int, shape: str, locale: str) -> _Dataset:
        if shape not in ("V1", "V2"):
            raise ValueError(f"shape must be V1 or V2, not {shape!r}")
        key = (xuid, shape, locale)
        ds = self._datasets.get(key)
        if ds is None:
            ds = self._datasets[key] = _Dataset(xuid, shape, locale)
            self._locales.setdefault((xuid, shape), []).append(locale)
        return ds

    def add_listing(self, query: AchievementsQuery, locale: str, body: dict,
                    recorded_at: str | None = None) -> None:
        """A recorded 200 page (``query``: the recorded request, read by the validator) added to
        its dataset (see _Dataset.add_page)."""
        source = f"recording {recorded_at}" if recorded_at else "recording"
        ds = self._dataset(int(query.xuid), query.shape, locale)
        ds.add_page(query, body, source)
        items = body.get("achievements")
        self._origins.setdefault((ds.xuid, ds.shape, ds.locale), Origins()).page(
            query.title_ids, items if isinstance(items, list) else [], ds.shape, recorded_at)

    def add_hand_dataset(self, entry: dict, source: str = "") -> None:
        """A cassette `datasets:` item (docs/DESIGN.md); raises ValueError on a malformed entry."""
        ds = self._dataset(int(entry["xuid"]), entry.get("shape", "V2"), str(entry.get("locale", DEFAULT_LOCALE)))
        ds.add_titles(entry.get("titles") or (), entry.get("complete", True) is not False, source)
        self._origins.setdefault((ds.xuid, ds.shape, ds.locale), Origins()).hand(entry.get("titles") or (), source)

    def add_binding(self, userhash_sha256: str, xuid: int) -> None:
        self._bindings[userhash_sha256.lower()] = int(xuid)

    # -- read-only views

    def datasets(self) -> Iterator[DatasetInfo]:
        for ds in self._datasets.values():
            yield ds.info()

    def coverage_report(self) -> list[dict[str, Any]]:
        """Per dataset: whether all titles are covered, and each known title's size and coverage."""
        return [ds.coverage_report() for ds in self._datasets.values()]

    def title_coverage(self) -> list[TitleCoverage]:
        """Per dataset, one row per title: achievements known and unlocked, R2 coverage and why
        not, where and when its items came from (engine.report; `xblreplay report`)."""
        rows = []
        for key, ds in self._datasets.items():
            coverage = ds._coverage  # the dataset's R2 record, read here and nowhere else outside it
            titles = set(ds.titles()) | coverage.listed()
            rows += title_rows(*key, titles, ds.title_stats, coverage.why, self._origins.get(key) or Origins())
        return rows

    def _of(self, xuid: int, shape: str | None = None) -> list[_Dataset]:
        """The datasets of `xuid` (of `shape` only, when given), first built first."""
        return [d for (x, s, _), d in self._datasets.items() if x == xuid and shape in (None, s)]

    # -- answering

    def check_binding(self, userhash: str | None, xuid: int) -> Answer | None:
        """R8: 403 when the caller's userhash is bound to another xuid; None otherwise."""
        if userhash is None:
            return None
        bound = self._bindings.get(hashlib.sha256(userhash.encode("utf-8")).hexdigest())
        if bound is None or bound == xuid:
            return None
        return answers.bound_elsewhere(xuid)

    def _resolve(self, xuid: int, shape: str, locales: tuple[str, ...]) -> tuple[_Dataset | None, str]:
        """R6: the dataset of the locale :func:`pick_locale` chooses."""
        known = self._locales.get((xuid, shape))
        if not known:
            return None, ""
        locale, note = pick_locale(known, locales, "dataset")
        return self._datasets[(xuid, shape, locale)], note

    def _not_recorded(self, xuid: int, shape: str) -> Answer:
        others = sorted(s for (x, s) in self._locales if x == xuid)
        also = f" (recorded: {', '.join(others)})" if others else ""
        reason = f"R9: no {shape} dataset is recorded for xuid {xuid}{also}"
        return answers.diagnostic("R9", "no-dataset", "path", "xuid", reason)

    def _coverage(self, ds: _Dataset, titles: tuple[int, ...] | None, where: tuple[str, str],
                  reasons: list[str], violations: list[Violation]) -> Answer | None:
        """R2 for an answer over `titles` (None: all): with strict coverage the 404 to give;
        otherwise None, and a gap adds its reason and a `coverage` warning."""
        reason = gap(ds.missing(titles), ds.xuid, ds.shape, ds.locale)
        if not reason:
            return None
        if self.strict_coverage:
            return answers.diagnostic("R2", "coverage", "path", where[1], reason)
        reason += "; answered from what is known"
        reasons.append(reason)
        violations.append(Violation("R2", where[0], where[1], WARNING, reason, code="coverage"))
        return None

    def answer(self, query: AchievementsQuery, now: datetime) -> Answer:
        """Answer a listing query from the datasets (R3–R7), with R2/R9 diagnostics. The answers
        of the last ANSWERS_KEPT queries are kept while their dataset is unchanged: a page asked
        again is the same answer, its bytes written once (EndingSoon, which reads the clock, is
        always answered afresh)."""
        if query.shape is None:  # R6: unsupported contract version
            return answers.unsupported_contract("achievements", query.contract)
        ds, locale_note = self._resolve(query.xuid, query.shape, query.locales)
        if ds is None:
            return self._not_recorded(query.xuid, query.shape)
        if query.order_by == "EndingSoon":
            return self._answer(ds, locale_note, query, now)
        key = (ds, ds.changes, self.item_check, self.strict_coverage, locale_note, query.title_ids, query.types, query.unlocked_only, query.possible_only,
               query.order_by, query.start, query.page_size, query.rarity)
        kept = self._answers
        answer = kept.get(key)
        if answer is None:
            answer = kept[key] = self._answer(ds, locale_note, query, now)
            if len(kept) > ANSWERS_KEPT:
                kept.popitem(last=False)
        else:
            kept.move_to_end(key)
        return answer

    def _answer(self, ds: _Dataset, locale_note: str, query: AchievementsQuery, now: datetime) -> Answer:
        titles = None if query.title_ids is None else tuple(sorted(set(query.title_ids)))
        violations: list[Violation] = []
        reasons = [locale_note] if locale_note else []
        refused = self._coverage(ds, titles, ("query", "titleId"), reasons, violations)
        if refused is not None:
            return refused

        possible = query.possible_only
        categories = selected(query.types, query.unlocked_only and not possible)  # R3.4: possibleOnly wins
        order = "Unordered" if possible and query.order_by == "UnlockTime" else query.order_by
        found = ds.result(titles, categories, order, now)

        # R5 paging
        start, total = query.start, len(found)
        positions = found[start:start + query.page_size]
        following = start + len(positions)
        # R3 possibleOnly serves definitions; R6: contracts 3 (V1) and 4 (V2) keep recorded
        # rarity, 1 and 2 drop it
        items, invalid = ds.served(positions, form(possible, query.rarity), self.item_check)
        body: dict[str, Any] = {"achievements": items, **paging(ds.shape, ds.version, following, total)}
        return self._checked(answers.from_dataset(body, reasons, violations, encoded=True), invalid)

    def _checked(self, answer: Answer, invalid: list[tuple[int, tuple]]) -> Answer:
        """The answer marked as having its items checked (R7), with the violations found."""
        if self.item_check is not None:
            answer.item_violations = [r7_item_violations(index, found) for index, found in invalid]
        return answer

    def answer_detail(self, xuid: int, scid: str, achievement_id: int | str, shape: str | None,
                      locales: tuple[str, ...] = (), rarity: bool = False) -> Answer:
        """One achievement in the list shape (the wire form of the detail endpoint); 404 when unknown."""
        shape = shape or "V2"
        ds, _ = self._resolve(int(xuid), shape, tuple(locales))
        if ds is None:
            return self._not_recorded(int(xuid), shape)
        scid = str(scid).lower()
        if shape == "V2":
            pos = ds.position((scid, str(achievement_id)))
        else:  # V1 items carry no SCID: the title comes from a V2 dataset or the derived SCID
            titles = {t for t in ds.titles() if derived_scid(t) == scid}
            for v2 in self._of(ds.xuid, "V2"):
                known = v2.position((scid, str(achievement_id)))
                if known is not None:
                    titles.update(v2.titles_of(known))
            number = _as_int(achievement_id)
            pos = next((p for t in titles if (p := ds.position((t, number))) is not None), None)
        if pos is None:
            reason = (f"R9: achievement {achievement_id} of {scid} is not recorded for xuid {xuid} "
                      f"({shape}, {ds.locale})")
            return answers.diagnostic("R9", "not-recorded", "path", "achievementid", reason)
        items, invalid = ds.served([pos], form(False, rarity), self.item_check)
        body = {"achievements": items, **paging(ds.shape, ds.version, 1, 1)}  # one item, no token
        return self._checked(answers.from_dataset(body, encoded=True), invalid)

    def answer_history(self, xuid: int, shape: str | None, locales: tuple[str, ...], start: int,
                       page_size: int) -> Answer:
        """GET /users/xuid({xuid})/history/titles from the chosen locale's dataset (R6), paged as R5.

        Which titles are listed and in what order: history.listed; their rows: history.rows. The
        V1 body has the top-level version. Coverage gaps (R2) are warned about (404 with strict
        coverage).
        """
        if shape is None:  # R6: unsupported contract version
            return answers.unsupported_contract("titles", None)
        ds, locale_note = self._resolve(int(xuid), shape, tuple(locales))
        if ds is None:
            return self._not_recorded(int(xuid), shape)
        reasons, violations = [locale_note] if locale_note else [], []
        refused = self._coverage(ds, None, ("path", "xuid"), reasons, violations)
        if refused is not None:
            return refused
        listed = ds.history()
        total = len(listed)
        page = listed[start:start + page_size]
        titles = rows(page, shape, start, total, self._title_names(ds))
        return answers.from_dataset({"titles": titles, **paging(ds.shape, ds.version, start + len(page), total)},
                                    reasons, violations)

    def _title_names(self, ds: _Dataset) -> Callable[[int], str]:
        """A title's name from another dataset of the same xuid (its own locale first), or "";
        the other datasets found once per answer, not once per row."""
        others = sorted((d for d in self._of(ds.xuid) if d is not ds), key=lambda d: d.locale != ds.locale)
        return lambda title: next((name for d in others if title in d.titles()
                                   and (name := d.title_stats(title).name)), "")

    def apply_update(self, xuid: int, scid: str, body: dict, now: datetime) -> Answer:
        """POST /users/xuid({xuid})/achievements/{scid}/update (spec §5), on the stored progress.

        `body` is the schema-checked progressUpdate. Each achievement is changed in the V2
        dataset of every locale that has it (see updates.apply). Answers: 200 (empty) when
        something changed, 304 (empty) when nothing did, 404 (R9) when the xuid has no V2 dataset or an achievement of the
        body is not recorded; nothing is changed unless every achievement of the body is known.
        """
        xuid, scid = int(xuid), str(scid).lower()
        v2 = self._of(xuid, "V2")
        if not v2:
            return self._not_recorded(xuid, "V2")
        steps, unknown = updates.plan(v2, scid, body)
        if unknown is not None:
            reason = f"R9: achievement {unknown} of {scid} is not recorded for xuid {xuid} (V2, any locale)"
            return answers.diagnostic("R9", "not-recorded", "path", "achievementid", reason)
        changed = updates.apply(steps, self._of(xuid, "V1"), wire_time(now), self._undo.keep)
        if changed:
            self.updated.add(xuid)
        return answers.updated(changed)

    def drop_updates(self) -> int:
        """Every progress update of the run undone: the datasets answer as loaded again (and a
        request recorded exactly is answered as recorded again). How many items were put back."""
        self.updated.clear()
        return self._undo.undo()
