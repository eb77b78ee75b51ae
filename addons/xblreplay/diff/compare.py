"""Two answers to one request compared: the service's and the one replay gives from the
cassettes. Each disagreement is a :class:`Finding` naming the emulation rule it points at
(docs/RULES.md) and the first JSON paths where the answers differ.

Which rule a difference points at (README, "Diff mode"):

* the status differs: R8 when either is one of its statuses (400, 401, 403, 405), R10 for a 429,
  else R9 (a 404 of the cassettes: not recorded), or R2 when the cassettes' 404 is strict coverage;
* ``totalRecords`` differs: R3 (the filters) when the query filters (titleId, types, unlockedOnly,
  possibleOnly), R2 when the cassettes' answer carried a coverage warning, else R1 (the dataset);
* the same total, other items on the page or the same items in another order: R4 (ordering);
  a page of another length, or another continuation token: R5 (paging);
* a field of an achievement both answers hold (matched by identity, R1): R7, but R6 for
  ``rarity`` (contracts 3 and 4) and R3 for the user data possibleOnly removes;
* any other part of a 200 body: R7. Bodies of other statuses are not compared (the status is).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..model import AchievementsQuery, Violation
from .rules import DiffRules
from .walk import Path, differences, pointer

R8_STATUSES = frozenset({400, 401, 403, 405})
ITEM_KEYS = ("achievements", "titles")  # where a listing-shaped body holds its items
PAGING = "pagingInfo"
USER_DATA = frozenset({"progressState", "progression"})  # what possibleOnly replaces (R3.4)


@dataclass(frozen=True)
class Finding:
    """One disagreement: the rule it points at, what differs (``aspect``: status, records, page,
    order, token, field, body, internal-error), a sentence in API terms, the first differing
    JSON paths (of the service's body) and how many more there were."""

    rule: str
    aspect: str
    message: str
    paths: tuple[str, ...] = ()
    more: int = 0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rule": self.rule, "aspect": self.aspect, "message": self.message}
        if self.paths:
            d["paths"] = list(self.paths)
        if self.more:
            d["more_paths"] = self.more
        return d


@dataclass
class Verdict:
    """What a comparison found: the rules the exchange exercised and the disagreements."""

    checked: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.checked.add(finding.rule)
        self.findings.append(finding)


def compare(query: AchievementsQuery | None, live_status: int, live_body: Any, local_status: int,
            local_body: Any, local_violations: list[Violation], rules: DiffRules) -> Verdict:
    """The service's answer (``live_*``) against the cassettes' (``local_*``; its violations say
    whether it knew its data was incomplete, R2). Bodies are parsed JSON, or bytes."""
    verdict = Verdict()
    rule = _status_rule(live_status, local_status, local_violations)
    verdict.checked.add(rule)
    if live_status != local_status:
        verdict.add(Finding(rule, "status", f"the service answered {live_status}, the cassettes {local_status}"))
        return verdict
    if live_status != 200:
        return verdict
    listing = next((k for k in ITEM_KEYS if isinstance(live_body, dict) and isinstance(local_body, dict)
                    and isinstance(live_body.get(k), list) and isinstance(local_body.get(k), list)), None)
    verdict.checked.add("R7")
    if listing is not None:
        _listing(verdict, query, listing, live_body, local_body, local_violations, rules)
    elif isinstance(live_body, (dict, list)) and isinstance(local_body, (dict, list)):
        _fields(verdict, rules, "R7", "field", "the body differs", differences(live_body, local_body, rules))
    elif live_body != local_body:
        verdict.add(Finding("R7", "body", "the body differs (not JSON on at least one side)"))
    return verdict


def _status_rule(live: int, local: int, local_violations: list[Violation]) -> str:
    both = {live, local}
    if both & R8_STATUSES:
        return "R8"
    if 429 in both:
        return "R10"
    if local == 404 and any(v.code == "coverage" for v in local_violations):
        return "R2"
    if 404 in both:
        return "R9"
    return "R8"  # both took the request as valid: R8 agrees


def identity(item: Any) -> tuple[str, ...]:
    """R1: an achievement's identity, (serviceConfigId, id) in V2, (titleId, id) in V1; a title
    history row's titleId."""
    if not isinstance(item, dict):
        return ("", repr(item))
    if "serviceConfigId" in item:
        return (str(item["serviceConfigId"]).lower(), str(item.get("id")))
    if "titleId" in item:
        return (str(item["titleId"]), str(item["id"])) if "id" in item else (str(item["titleId"]),)
    return ("", str(item.get("id")))


def _shown(ident: tuple[str, ...]) -> str:
    return ident[-1]


def _query_text(query: AchievementsQuery | None) -> str:
    if query is None:
        return ""
    parts = []
    if query.title_ids is not None:
        parts.append("titleId=" + ",".join(map(str, query.title_ids)))
    if query.types is not None:
        parts.append("types=" + ",".join(sorted(query.types)))
    if query.unlocked_only:
        parts.append("unlockedOnly=true")
    if query.possible_only:
        parts.append("possibleOnly=true")
    parts.append(f"orderBy={query.order_by}")
    return ", ".join(parts)


def _filtered(query: AchievementsQuery | None) -> bool:
    return query is not None and (query.types is not None or query.unlocked_only or query.possible_only
                                  or query.title_ids is not None)


def _listing(verdict: Verdict, query: AchievementsQuery | None, key: str, live: dict, local: dict,
             local_violations: list[Violation], rules: DiffRules) -> None:
    live_items, local_items = live[key], local[key]
    live_ids, local_ids = [identity(x) for x in live_items], [identity(x) for x in local_items]
    live_paging, local_paging = live.get(PAGING) or {}, local.get(PAGING) or {}
    if not isinstance(live_paging, dict) or not isinstance(local_paging, dict):
        live_paging = local_paging = {}
    if any(v.code == "coverage" for v in local_violations):
        set_rule = "R2"
    else:
        set_rule = "R3" if _filtered(query) else "R1"
    verdict.checked.update({set_rule, "R4", "R5"})
    shown = f" ({_query_text(query)})" if query is not None else ""
    id_key = "titleId" if key == "titles" else "id"
    live_set, local_set = set(live_ids), set(local_ids)
    only_live = [i for i in live_ids if i not in local_set]
    only_local = [i for i in local_ids if i not in live_set]
    total = "totalRecords"
    paging_done = False
    if live_paging.get(total) != local_paging.get(total):
        which = ("; on this page only the service has " + _ids(only_live) if only_live else "") + (
            "; only the cassettes have " + _ids(only_local) if only_local else "")
        verdict.add(Finding(set_rule, "records", f"totalRecords {live_paging.get(total)} from the service, "
                            f"{local_paging.get(total)} from the cassettes{shown}{which}",
                            (f"/{PAGING}/{total}",) + _item_paths(key, live_ids, only_live, id_key, rules)))
        paging_done = True  # the token follows the total
    elif len(live_ids) != len(local_ids):
        verdict.add(Finding("R5", "page", f"the page holds {len(live_ids)} items from the service, "
                            f"{len(local_ids)} from the cassettes{_page_text(query)}", (f"/{key}",)))
        paging_done = True
    elif live_ids != local_ids:
        at = [i for i, (a, b) in enumerate(zip(live_ids, local_ids)) if a != b]
        how = ("other items on this page" if Counter(live_ids) != Counter(local_ids)
               else "the same items in another order")
        first = at[0]
        paths = [f"/{key}/{i}/{id_key}" for i in at]
        verdict.add(Finding("R4", "order", f"{how}{shown}: at position {first} the service has {id_key} "
                            f"{_shown(live_ids[first])}, the cassettes {_shown(local_ids[first])}",
                            tuple(paths[:rules.max_paths]), max(0, len(paths) - rules.max_paths)))
    token = "continuationToken"
    if not paging_done and live_paging.get(token) != local_paging.get(token):
        verdict.add(Finding("R5", "token", f"continuationToken {live_paging.get(token)!r} from the service, "
                            f"{local_paging.get(token)!r} from the cassettes{_page_text(query)}",
                            (f"/{PAGING}/{token}",)))
    # Every item both answers hold, field by field, at the service's position.
    local_by_id = {i: item for i, item in zip(local_ids, local_items)}
    found: list[Path] = []
    for n, (ident, item) in enumerate(zip(live_ids, live_items)):
        if ident in local_by_id:
            found += differences(item, local_by_id[ident], rules, (key, str(n)))
    # The rest of the body (V1 version, pagingInfo beyond what is judged above).
    rest_live = {k: v for k, v in live.items() if k != key}
    rest_local = {k: v for k, v in local.items() if k != key}
    for side in (rest_live, rest_local):
        if isinstance(side.get(PAGING), dict):
            side[PAGING] = {k: v for k, v in side[PAGING].items() if k not in (total, token)}
    found += differences(rest_live, rest_local, rules)
    by_rule: dict[str, list[Path]] = {}
    for path in found:
        by_rule.setdefault(_field_rule(query, key, path), []).append(path)
    for rule, paths in by_rule.items():
        _fields(verdict, rules, rule, "field", _field_text(rule, query), paths)


def _field_rule(query: AchievementsQuery | None, key: str, path: Path) -> str:
    inside = path[2:] if len(path) > 2 and path[0] == key else ()
    if inside[:1] == ("rarity",):
        return "R6"
    if query is not None and query.possible_only and inside[:1] and inside[0] in USER_DATA:
        return "R3"
    return "R7"


def _field_text(rule: str, query: AchievementsQuery | None) -> str:
    if rule == "R6":
        return f"rarity differs (contract {query.contract if query else None}: kept with contracts 3 and 4)"
    if rule == "R3":
        return "user data differs under possibleOnly=true"
    return "field values differ for the same achievements"


def _fields(verdict: Verdict, rules: DiffRules, rule: str, aspect: str, text: str, paths: list[Path]) -> None:
    if paths:
        shown = tuple(pointer(p) for p in paths[:rules.max_paths])
        verdict.add(Finding(rule, aspect, f"{text}: {len(paths)} path{'' if len(paths) == 1 else 's'}",
                            shown, len(paths) - len(shown)))
    else:
        verdict.checked.add(rule)


def _ids(idents: list[tuple[str, ...]]) -> str:
    shown = ", ".join(_shown(i) for i in idents[:5])
    return f"id {shown}" + (f" and {len(idents) - 5} more" if len(idents) > 5 else "")


def _item_paths(key: str, ids: list[tuple[str, ...]], which: list[tuple[str, ...]], id_key: str,
                rules: DiffRules) -> tuple[str, ...]:
    wanted = set(which)
    return tuple(f"/{key}/{n}/{id_key}" for n, i in enumerate(ids) if i in wanted)[:rules.max_paths - 1]


def _page_text(query: AchievementsQuery | None) -> str:
    return f" (start {query.start}, page size {query.page_size})" if query is not None else ""
