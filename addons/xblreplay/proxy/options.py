"""The proxy's options: one table (name, type, default, help, choices) and the policy for their
values.

The addon declares its mitmproxy options from :data:`OPTIONS`; ``xblreplay run --help`` prints
them from here too. Every value is checked here before any of it is used, so that a bad value
is one line naming the option, never a configuration that silently falls back to defaults.
The core builds its configuration from :class:`Settings`; nothing here depends on mitmproxy.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional
from urllib.parse import urlsplit

from .. import DEFAULT_RULES_DIR, bounds
from ..mode import MODES, Mode
from ..model import closest


class ConfigError(Exception):
    """A bad option value or a configuration that cannot be built, reported as one line."""


@dataclass(frozen=True)
class Option:
    name: str
    type: Any  # str, bool, Optional[str] or Optional[int]: the typespec mitmproxy is given
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str = ""  # what the value is, for help texts

    @property
    def shown_value(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        return self.metavar or {"bool": "true|false", "int": "INT", "str": "TEXT"}[self.kind]

    @property
    def kind(self) -> str:
        """'str', 'bool', 'int' (for the parser and for help texts)."""
        if self.type is bool:
            return "bool"
        if self.type in (int, Optional[int]):
            return "int"
        return "str"

    @property
    def optional(self) -> bool:
        return self.type in (Optional[str], Optional[int])

    def shown_default(self) -> str:
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)


OPTIONS: tuple[Option, ...] = (
    Option("achievements_mode", str, "replay",
           "validate: forward, judge, log. record: forward and record into cassettes. "
           "replay: answer offline from cassettes, never connect. replay-or-record: answer "
           "from cassettes when coverage allows, else forward and record. diff: forward, and "
           "compare each answer with the one replay gives from the cassettes (rules/diff.yaml).",
           choices=MODES),
    Option("achievements_cassettes", str, "cassettes", "Cassette directory.", metavar="DIR"),
    Option("achievements_upstream", Optional[str], None,
           "Base URL that traffic for achievements.xboxlive.com is forwarded to instead of "
           "the real service (staging, tests), e.g. http://127.0.0.1:8080.", metavar="URL"),
    Option("achievements_log", Optional[str], None,
           "Path of the JSON Lines validation log. Unset: mitmproxy's event log only.", metavar="PATH"),
    Option("achievements_strict", bool, False,
           "In validate mode, answer invalid requests with the R8 status instead of forwarding."),
    Option("achievements_rules", str, str(DEFAULT_RULES_DIR), "The rules/ directory.", metavar="DIR"),
    Option("achievements_now", Optional[str], None,
           "The proxy clock for EndingSoon, as an ISO time (e.g. 2026-11-27T12:00:00Z). Unset: now.",
           metavar="TIME"),
    Option("achievements_strict_coverage", bool, False,
           "R2: answer 404 instead of a partial answer when a query needs unrecorded titles."),
    Option("achievements_throttle", bool, False,
           "R10: emulate the service's rate limits (429 with Retry-After)."),
    Option("achievements_faults", Optional[str], None,
           "Fault and latency profile: a name in rules/faults/ (flaky, outage, slow, mobile) or a path.",
           metavar="NAME|PATH"),
    Option("achievements_seed", Optional[int], None,
           "Seed for the fault profile's randomness. Unset: the profile's own seed."),
    Option("achievements_check_responses", bool, True,
           "R7: check every 200 achievements body (recorded or synthesised) against the schema."),
    Option("achievements_max_body", int, bounds.MAX_BODY_BYTES,
           "Largest response body, in bytes after Content-Encoding decoding, that is read: parsed, "
           "checked and recorded. A larger one (or one that cannot be decoded) is forwarded to the "
           "client untouched and logged as not recorded; mitmproxy's stream_large_bodies is held at "
           "this value, so a larger body is streamed, never held in memory.",
           metavar="BYTES"),
    Option("achievements_diff_record", bool, False,
           "In diff mode, also record the service's answers into the cassette directory (the "
           "comparison goes on against the cassettes as loaded). No effect in other modes."),
)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
NAMES: frozenset[str] = frozenset(BY_NAME)


# ---------------------------------------------------------------------------------------------
# Values as given: `--set name=value` text, or a typed value in mitmproxy's config.yaml


def parse_text(name: str, texts: list[str]) -> Any:
    """The value of ``--set name=value`` (``texts``: every value given for the name; none for a
    bare ``--set name``), with mitmproxy's own rules for its option types, or ConfigError."""
    opt = BY_NAME[name]
    if len(texts) > 1:
        raise ConfigError(f"{name} is set {len(texts)} times ({', '.join(map(repr, texts))}); give it once")
    text = texts[0] if texts else None
    if opt.kind == "bool":
        if not text or text == "true":  # a bare --set name means true, as in mitmproxy
            return True
        if text == "false":
            return False
        if text == "toggle":
            return not opt.default
        raise ConfigError(f"{name}={text!r} is not a boolean: use true or false")
    if opt.kind == "int":
        if not text:
            if opt.optional:
                return None
            raise ConfigError(f"{name} needs an integer value")
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r} is not an integer") from None
    if text is None and not opt.optional:
        raise ConfigError(f"{name} needs a value ({name}=...)")
    return text


def check_type(name: str, value: Any) -> Any:
    """A typed value (mitmproxy's config.yaml, mitmweb's options editor) of the option's type."""
    opt = BY_NAME[name]
    if value is None and opt.optional:
        return None
    wanted = {"bool": bool, "int": int, "str": str}[opt.kind]
    if isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)):
        return value
    kind = {"bool": "true or false", "int": "an integer", "str": "a string"}[opt.kind]
    raise ConfigError(f"{name}={value!r} is not {kind}")


def looks_like_ours(name: str) -> bool:
    """Whether an unknown option name is most likely one of ours misspelt."""
    return name.lower().startswith("achievement") or closest(name, NAMES, cutoff=0.8) is not None


def unknown_option(name: str, known: Iterable[str] = ()) -> str:
    """The one line for an unknown option name."""
    near = closest(name, NAMES) or closest(name, known)
    hint = f"; did you mean {near}?" if near else ""
    return f"unknown option {name}{hint}"


def take_startup_values(
    pending: Mapping[str, Any], is_text: Any, known: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """Sort start-up option values that mitmproxy has not applied yet (``pending``: name -> the
    texts of ``--set`` when ``is_text(value)`` gives them, else a typed value).

    Returns (checked values of ours, errors by name); an unknown name that looks like ours is an
    error too (``known``: every option mitmproxy has, for the suggestion). Other names are not
    ours and are left alone."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in pending.items():
        if name not in NAMES:
            if looks_like_ours(name):
                errors[name] = unknown_option(name, known)
            continue
        try:
            texts = is_text(raw)
            values[name] = parse_text(name, texts) if texts is not None else check_type(name, raw)
        except ConfigError as e:
            errors[name] = str(e)
    return values, errors


# ---------------------------------------------------------------------------------------------
# The checked settings a configuration is built from


@dataclass(frozen=True)
class Settings:
    mode: Mode
    cassettes: Path
    upstream: tuple[str, str, int, str] | None  # scheme, host, port, path prefix
    log: str | None
    strict: bool
    rules: Path
    now: datetime | None
    strict_coverage: bool
    throttle: bool
    faults: str | None
    seed: int | None
    check_responses: bool
    max_body: int = bounds.MAX_BODY_BYTES
    diff_record: bool = False

    @property
    def records(self) -> bool:
        return self.mode.records or (self.mode.compares and self.diff_record)

    @property
    def replays(self) -> bool:
        """The cassettes must load (replay answers from them, diff compares with them)."""
        return self.mode.loads_cassettes


def parse_upstream(value: str | None) -> tuple[str, str, int, str] | None:
    if not value:
        return None
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query or parts.fragment:
        raise ConfigError(f"achievements_upstream must be an http(s) base URL, got {value!r}")
    port = port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def settings(values: Mapping[str, Any]) -> Settings:
    """Check the values of every option (``values``: name -> value, typed) for what can be known
    without reading files; ConfigError names the option."""
    from ..replay import parse_now  # the one parser of achievements_now, shared with `xblreplay query`

    for name in NAMES:
        check_type(name, values[name])
    mode = values["achievements_mode"]
    if mode not in MODES:
        raise ConfigError(f"achievements_mode={mode!r} is not a mode; choose one of {', '.join(MODES)}")
    for name in ("achievements_cassettes", "achievements_rules"):
        if not values[name]:
            raise ConfigError(f"{name} must not be empty")
    upstream = parse_upstream(values["achievements_upstream"])
    max_body = values["achievements_max_body"]
    if max_body <= 0:
        raise ConfigError(f"achievements_max_body={max_body} is not a size: give a number of bytes above 0 "
                          f"(default {bounds.MAX_BODY_BYTES})")
    try:
        now = parse_now(values["achievements_now"])
    except ValueError:
        raise ConfigError(f"achievements_now={values['achievements_now']!r} is not an ISO time "
                          "(e.g. 2026-11-27T12:00:00Z)") from None
    return Settings(
        mode=Mode(mode), cassettes=Path(values["achievements_cassettes"]), upstream=upstream,
        log=values["achievements_log"] or None, strict=values["achievements_strict"],
        rules=Path(values["achievements_rules"]), now=now,
        strict_coverage=values["achievements_strict_coverage"], throttle=values["achievements_throttle"],
        faults=values["achievements_faults"] or None, seed=values["achievements_seed"],
        check_responses=values["achievements_check_responses"], max_body=max_body,
        diff_record=values["achievements_diff_record"],
    )


def help_text(width: int = 92) -> str:
    """The options as ``xblreplay run --help`` lists them."""
    lines = []
    for o in OPTIONS:
        lines.append(f"  --set {o.name}={o.shown_value}")
        lines.append(textwrap.fill(f"{o.help} Default: {o.shown_default()}.", width=width,
                                   initial_indent=" " * 6, subsequent_indent=" " * 6,
                                   break_long_words=False, break_on_hyphens=False))
    return "\n".join(lines)
