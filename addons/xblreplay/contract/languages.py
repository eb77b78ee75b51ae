"""R6: the Accept-Language preference list a request asks for, best first, in BCP 47 case."""

from __future__ import annotations

import re

_LANG_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")


def _canonical_locale(tag: str) -> str:
    """BCP 47 case conventions: `EN-us` -> `en-US`, `zh-hant-tw` -> `zh-Hant-TW`."""
    first, *rest = tag.split("-")
    out = [first.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def parse_accept_language(value: str) -> tuple[str, ...]:
    """R6: the Accept-Language preference list, best first (q-values honoured, q=0 and `*` dropped,
    ties keep header order, duplicates removed)."""
    ranked = []
    for index, part in enumerate(value.split(",")):
        tag, _, params = part.partition(";")
        tag = tag.strip()
        if not _LANG_TAG.match(tag):
            continue
        q = 1.0
        for param in params.split(";") if params else ():
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = -1.0
        if 0.0 < q <= 1.0:
            ranked.append((-q, index, _canonical_locale(tag)))
    ranked.sort()
    return tuple(dict.fromkeys(tag for _, _, tag in ranked))
