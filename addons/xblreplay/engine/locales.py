"""R6 locales: which of the locales something was recorded in answers a request's Accept-Language."""

from __future__ import annotations

DEFAULT_LOCALE = "en-US"


def _primary(locale: str) -> str:
    return locale.split("-", 1)[0].lower()


def pick_locale(known: list[str], wanted: tuple[str, ...], what: str = "dataset") -> tuple[str, str]:
    """R6: of the ``known`` locales (first recorded first), the first ``wanted`` one, then a
    primary-language match, then the default (the first recorded); with a note when the
    default had to stand in."""
    lowered = {k.lower(): k for k in known}
    for locale in wanted:
        if locale.lower() in lowered:
            return lowered[locale.lower()], ""
    for locale in wanted:
        for k in known:
            if _primary(k) == _primary(locale):
                return k, ""
    note = f"no {what} in {', '.join(wanted)}; answered in the default locale {known[0]}" if wanted else ""
    return known[0], note
