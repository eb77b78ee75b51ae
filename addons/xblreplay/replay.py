"""Offline answers: cassettes -> datasets + recorded interactions -> an Answer per request.

This is the part of replay that has nothing to do with mitmproxy; the addon and
``xblreplay query`` both call :meth:`Replayer.handle`.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Any, Callable

from . import answers, cassette, memory
from .cassette.plain import keep as keep_proofs
from .cassette.schema import prepare as prepare_checks
from .engine import DEFAULT_LOCALE, DatasetStore, pick_locale
from .model import EP_DETAIL, EP_HISTORY, EP_LIST, EP_UPDATE, AchievementsQuery, Answer, RequestCheck
from .contract import Validator, parse_accept_language, request_key, request_language, split_url

# Recorded requests carry no Authorization (it is never stored); the validator needs one
# to parse a recorded URL into a query, so a placeholder stands in for it.
_PLACEHOLDER_AUTH = "XBL3.0 x=recorded;recorded"


def parse_now(value: str | None) -> datetime | None:
    """The `achievements_now` option: an ISO time (``Z`` allowed); None means the real clock."""
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass
class Listing:
    """A recorded 200 page of the achievements listing, waiting to merge into a dataset."""

    query: AchievementsQuery
    body: dict[str, Any]
    recorded_at: str

    @property
    def group(self) -> tuple:
        q = self.query
        return (q.xuid, q.shape, q.locales[:1], q.title_ids, q.types, q.unlocked_only,
                q.possible_only, q.order_by)


class Replayer:
    def __init__(
        self,
        validator: Validator,
        store: DatasetStore,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.validator = validator
        self.store = store
        if store.item_check is None:  # R7: served items checked once per form, by the contract
            store.item_check = validator.items_errors
        # (request key, Accept-Language as recorded) -> interaction; per key, its recorded
        # languages, first recorded first (the R6 default), each with its first locale
        self.interactions: dict[tuple[str, str], dict[str, Any]] = {}
        self._languages: dict[str, dict[str, str]] = {}
        self._latency: dict[str, float] | None = None  # endpoint -> median recorded latency
        self.files = 0
        self._now = now or (lambda: datetime.now(timezone.utc))

    @classmethod
    def from_dir(
        cls,
        validator: Validator,
        cassette_dir: str | os.PathLike,
        *,
        strict_coverage: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> "Replayer":
        """Load every cassette below `cassette_dir`; raises cassette.CassetteError (file, line)."""
        replayer = cls(validator, DatasetStore(strict_coverage=strict_coverage), now=now)
        listings: list[Listing] = []
        # Loading allocates millions of objects and no cycles: the cyclic collector would only
        # rescan them again and again (a third of a large load). Loaded data is then frozen out
        # of later collections, which keeps them short while the proxy serves.
        prepare_checks()  # what lives on is made before any document (memory.py says why)
        before, loaded = memory.resident(), 0
        gc.disable()
        try:
            for path, doc in cassette.load_dir(cassette_dir):
                listings += replayer.add_document(doc, source=str(path))
                replayer.files += 1
                loaded += os.path.getsize(path)
            replayer.merge_listings(listings)
        finally:
            gc.enable()
            keep_proofs([])  # a file loaded and not built keeps nothing past the load
        memory.release_free()
        if memory.scattered(before, loaded):
            memory.copy_fresh(replayer, "store", detached=("item_check",))
            memory.release_free()
        gc.freeze()
        return replayer

    def add_document(self, doc: dict[str, Any], source: str = "") -> list["Listing"]:
        """Index a cassette; returns its recorded listings for :meth:`merge_listings`."""
        for binding in doc.get("bindings") or ():
            self.store.add_binding(binding["userhash_sha256"], int(binding["xuid"]))
        for d, entry in enumerate(doc.get("datasets") or ()):
            try:
                self.store.add_hand_dataset(entry, source=source)
            except ValueError as exc:  # what the schema check cannot see: still FILE:LINE
                raise cassette.CassetteError(source, cassette.line_in_file(source, ["datasets", d]),
                                             f"datasets/{d}: {exc}") from None
        listings = []
        for interaction in doc.get("interactions") or ():
            listing = self.index_interaction(interaction)
            if listing is not None:
                listings.append(listing)
        return listings

    def add_interaction(self, interaction: dict[str, Any]) -> None:
        """Index one interaction and merge it at once (a live recording)."""
        listing = self.index_interaction(interaction)
        if listing is not None:
            self.merge_listings([listing])

    def index_interaction(self, interaction: dict[str, Any]) -> "Listing | None":
        """Index a recorded interaction for exact replay; a recorded 200 listing is returned
        so that it can merge into the datasets (R1)."""
        request, response = interaction["request"], interaction["response"]
        method, url = request.get("method", "GET"), request["url"]
        headers = {k.lower(): str(v) for k, v in (request.get("headers") or {}).items()}
        key, language = request_key(method, url, headers), request_language(headers)
        if (key, language) not in self.interactions:
            self._languages.setdefault(key, {})[language] = next(iter(parse_accept_language(language)), "")
        self.interactions[(key, language)] = interaction
        self._latency = None
        if response.get("status") != 200 or not isinstance(response.get("body"), dict):
            return None  # non-2xx responses are replayed verbatim but never merged into a dataset
        headers["authorization"] = _PLACEHOLDER_AUTH
        check = self.validator.check_request(method, url, headers)
        query = check.query
        if check.endpoint != EP_LIST or not check.ok or query is None or query.shape is None:
            return None
        return Listing(query, response["body"], interaction.get("recorded_at") or "")

    def merge_listings(self, listings: list["Listing"]) -> None:
        """R1: dataset order is first-seen order, page by page. Files keep interactions in URL
        order ("…Token=100" before "…Token=20"), so pages are merged in paging order: each
        listing (a query without its paging) in the order it was first recorded, and its pages
        by start offset."""
        first: dict[tuple, str] = {}
        for listing in listings:
            group = listing.group
            if group not in first or listing.recorded_at < first[group]:
                first[group] = listing.recorded_at
        listings = sorted(listings, key=lambda l: (first[l.group], repr(l.group), l.query.start))
        for l in listings:
            q = l.query
            locale = q.locales[0] if q.locales else DEFAULT_LOCALE
            self.store.add_listing(q, locale, l.body, l.recorded_at or None)

    def recorded_latency(self, check: RequestCheck) -> float | None:
        """The latency recorded for this request (ms): its own interaction's, else the median of
        the recordings of its endpoint; None when nothing was recorded (fault profiles fall back)."""
        recorded = self.exact(check)[0]
        if recorded is not None and recorded["response"].get("latency_ms") is not None:
            return float(recorded["response"]["latency_ms"])
        if self._latency is None:
            by_endpoint: dict[str, list[float]] = {}
            for interaction in self.interactions.values():
                latency = interaction["response"].get("latency_ms")
                if latency is not None:
                    request = interaction["request"]
                    endpoint = self.validator.endpoint(request.get("method", "GET"), split_url(request["url"])[0])
                    by_endpoint.setdefault(endpoint, []).append(float(latency))
            self._latency = {e: statistics.median(v) for e, v in by_endpoint.items()}
        return self._latency.get(check.endpoint)

    def exact(self, check: RequestCheck) -> tuple[dict[str, Any] | None, str]:
        """The interaction recorded for this very request, and a note when its language was
        chosen by R6 (the request's Accept-Language was not recorded: primary language, then the
        first recorded one)."""
        languages = self._languages.get(check.key)
        if not languages:
            return None, ""
        chosen, note = check.language, ""
        if chosen not in languages:
            by_locale: dict[str, str] = {}
            for language, locale in languages.items():
                if locale:
                    by_locale.setdefault(locale, language)
            wanted = check.query.locales if check.query is not None else parse_accept_language(check.language)
            if by_locale:
                locale, note = pick_locale(list(by_locale), wanted, "recorded interaction")
                chosen = by_locale[locale]
            if (note or not by_locale) and "" in languages:  # a recording without a language is the default
                chosen, note = "", ""
            elif not by_locale:
                chosen = next(iter(languages))
        return self.interactions[(check.key, chosen)], note

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None
               ) -> tuple[RequestCheck, Answer]:
        """Validate and answer one request offline."""
        check = self.validator.check_request(method, url, headers, body)
        return check, self.answer(check, method, url, body)

    def answer(self, check: RequestCheck, method: str, url: str, body: bytes | None = None) -> Answer:
        """The answer to a checked request; `body` is the request body (the update endpoint needs it)."""
        if not check.ok:
            return answers.invalid_request(check)
        query = check.query
        if check.endpoint in (EP_LIST, EP_HISTORY) and query is not None:
            denied = self.store.check_binding(query.userhash, query.xuid)
            if denied is not None:
                return denied
        recorded, note = self.exact(check)  # recorded under "the same request" key
        if (recorded is not None and check.endpoint in (EP_LIST, EP_HISTORY, EP_DETAIL)
                and check.path_params.get("xuid") not in self.store.updated):
            # A request recorded exactly is answered as the service answered it, unless progress
            # updates changed that user's data since: the datasets answer everything else.
            return answers.recorded(recorded, note)
        if check.endpoint in (EP_LIST, EP_HISTORY) and query is not None:
            if check.endpoint == EP_HISTORY:
                return self.store.answer_history(query.xuid, query.shape, query.locales,
                                                 query.start, query.page_size)
            return self.store.answer(query, self._now())
        if check.endpoint == EP_UPDATE and body:
            p = check.path_params
            return self.store.apply_update(p["xuid"], p["scid"], json.loads(body), self._now())
        if check.endpoint == EP_DETAIL:
            p = check.path_params
            shape = query.shape if query is not None else "V2"
            locales = query.locales if query is not None else ()
            rarity = query.rarity if query is not None else False
            answer = self.store.answer_detail(p["xuid"], p["scid"], p["achievement_id"], shape, locales, rarity)
            if answer.status != 404:
                return answer
        if recorded is not None:
            return answers.recorded(recorded, note)
        return answers.not_recorded(check, method, split_url(url)[0])
