"""Every form a secret can be written in, found and replaced: :class:`SecretPattern` (as it is,
percent-encoded, base64, JSON-escaped) and :func:`secret_pattern`, which builds one per set of
secrets once."""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping
from urllib.parse import quote

from ..bounds import MAX_SECRET_CHARS
from .credentials import MIN_SECRET_LEN

REDACTED = "<redacted>"

# Characters percent-encoding never changes (RFC 3986 "unreserved"), which JSON never escapes
# either: a run of them in a secret stands verbatim in every form of it, so it serves as the
# cheap substring probe that decides whether the regex needs to run at all.
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")
_ALNUM = re.compile(r"[A-Za-z0-9]+")  # what both base64 alphabets share
_PROBE_MIN = 4  # shortest run worth probing; a secret without one is always searched
_B64_MIN = 8  # shortest base64 core searched for (a shorter one is too likely by chance)
# A character JSON escapes ('"', a backslash, a control character): a secret holding one may not
# stand verbatim in JSON text in every form, so only decoding the JSON can tell.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def _utf8(text: str) -> bytes:
    """The bytes ``text`` stands for: a lone surrogate is the byte mitmproxy decoded it from
    (``surrogateescape``), or its own UTF-8 form when it is not one of those."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hex(byte: int) -> str:
    """A regex of ``%XX`` for one byte, hex digits in either case."""
    return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{byte:02X}")


def _percent_form(value: str) -> str:
    """A regex matching ``value`` percent-encoded in any mix (each reserved character raw or as
    its ``%XX`` bytes, in either case; a space also as ``+``)."""
    out = []
    for ch in value:
        if _UNRESERVED.fullmatch(ch):
            out.append(re.escape(ch))
            continue
        options = [re.escape(ch), "".join(_hex(b) for b in _utf8(ch))]
        if ch == " ":
            options.append(r"\+")
        out.append("(?:" + "|".join(options) + ")")
    return "".join(out)


def _base64_forms(value: str) -> list[str]:
    """The parts of ``value``'s base64 (standard and URL-safe alphabets) that stand in any base64
    text holding it, whatever its alignment: for each of the three offsets, the characters
    that only the secret's own bits decide."""
    data = _utf8(value)
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data + b"\0\0").decode("ascii")
        start = -(-8 * offset // 6)
        end = 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= _B64_MIN:
            forms += [core, core.replace("+", "-").replace("/", "_")]
    return list(dict.fromkeys(forms))


def _json_forms(value: str) -> list[str]:
    """``value`` as JSON strings write it, when that differs from the value."""
    forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms |= {f.replace("/", "\\/") for f in forms}
    return [f for f in forms if f != value]


class _Forms:
    """Every form of one secret value (see :class:`SecretPattern`). Its probes are found at once;
    its regex is compiled the first time a probe is seen (a signature sent once and never echoed
    is never compiled)."""

    __slots__ = ("name", "value", "_names", "literals", "_regexes", "always", "probes")

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value
        self._names: dict[str, str] | None = None  # regex group -> what a match is, once compiled
        self._regexes: tuple[re.Pattern[str], re.Pattern[str]] | None = None  # (decoded, JSON)
        self.literals: list[tuple[str, str]] = []  # (long value in a form, what it is)
        self.always, self.probes = False, ()
        if len(value) > MAX_SECRET_CHARS:
            self.literals = [(value, name), (quote(value, safe=""), f"{name} (percent-encoded)")]
            self._names = {}
            return
        # Probes: the value's longest run that every form keeps as it is, and each base64 core's
        # longest run both alphabets share; without one, the regex always runs.
        probes = set()
        runs = _UNRESERVED.findall(value)
        run = max(runs, key=len) if runs else ""
        self.always = len(run) < _PROBE_MIN
        probes.add(run)
        for core in _base64_forms(value):
            run = max(_ALNUM.findall(core), key=len, default="")
            self.always = self.always or not run
            probes.add(run)
        probes.discard("")
        # A probe holding another is never present without it: look for the shortest ones only.
        self.probes = tuple(p for p in probes if not any(o != p and o in p for o in probes))

    @property
    def names(self) -> dict[str, str]:
        if self._names is None:
            self._compile()
        return self._names

    def _compile(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        value, name = self.value, self.name
        names, decoded, escaped = {}, [], []
        forms = [(re.escape(value), name), (_percent_form(value), f"{name} (percent-encoded)")]
        forms += [(re.escape(f), f"{name} (base64)") for f in _base64_forms(value)]
        for j, (source, what) in enumerate(forms):
            names[f"f{j}"] = what
            decoded.append(f"(?P<f{j}>{source})")
        for j, form in enumerate(_json_forms(value)):
            names[f"j{j}"] = f"{name} (JSON-escaped)"
            escaped.append(f"(?P<j{j}>{re.escape(form)})")
        self._names = names
        self._regexes = (re.compile("|".join(decoded)), re.compile("|".join(decoded + escaped)))
        return self._regexes

    def _regex(self, text: str, in_json: bool) -> re.Pattern[str] | None:
        """The regex to run over ``text``, None when no form of the value can be in it."""
        if self.literals:
            return None
        if not self.always:
            for probe in self.probes:  # a loop, not any(): it runs for every line the proxy writes
                if probe in text:
                    break
            else:
                return None
        return (self._regexes or self._compile())[in_json]

    def search(self, text: str, in_json: bool) -> bool:
        if any(lit in text for lit, _ in self.literals):
            return True
        regex = self._regex(text, in_json)
        return regex is not None and regex.search(text) is not None

    def sub(self, text: str, in_json: bool, removed: list[str]) -> str:
        for lit, what in self.literals:
            if lit in text:
                removed += [what] * text.count(lit)
                text = text.replace(lit, REDACTED)
        regex = self._regex(text, in_json)
        if regex is not None:
            names = self._names

            def named(m: re.Match[str]) -> str:
                removed.append(names[m.lastgroup])
                return REDACTED

            text = regex.sub(named, text)
        return text


class SecretPattern:
    """The exchange's secret values, each searched in every form it can be written in: as it is,
    percent-encoded (any mix), base64 (either alphabet, any alignment) and, in JSON text,
    JSON-escaped. ``find``/``sub`` work on decoded text (a body's strings, a URL) or, with
    ``in_json``, on serialized JSON (a cassette line, a log line). Each value's forms are one
    regex with a group per form, so a match names its secret, compiled once per value (a client
    signing every request sends a new Signature each time beside the same Authorization: only the
    new value is compiled); values are searched longest first, so a longer value holding a
    shorter one wins. Each looks for cheap substring probes first (~10x faster than the regex
    over a 32 KiB page). A value longer than :data:`bounds.MAX_SECRET_CHARS` is searched as plain
    text, as it is and fully percent-encoded (a regex of its other forms would cost seconds to
    build)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        names: dict[str, str] = {}
        for name, value in secrets.items():
            names.setdefault(value, name)
        self.values = sorted(names, key=len, reverse=True)  # a longer value holding a shorter one wins
        self._forms = [_forms(names[v], v) if len(v) <= MAX_SECRET_CHARS else _Forms(names[v], v)
                       for v in self.values]
        self.non_ascii = not all(v.isascii() for v in self.values)
        self.json_escaped = any(_JSON_ESCAPED.search(v) for v in self.values)

    @property
    def names(self) -> dict[str, str]:
        """Each regex group of each value -> what its match is (none for a value searched as text)."""
        return {f"s{i}_{group}": what for i, forms in enumerate(self._forms) for group, what in forms.names.items()}

    def search(self, text: str, in_json: bool = False) -> bool:
        """Whether a secret is in ``text`` (decoded text, or serialized JSON with ``in_json``)."""
        for forms in self._forms:
            if forms.search(text, in_json):
                return True
        return False

    def find(self, text: str, in_json: bool = False) -> list[str]:
        """What is in ``text``: each secret's form found, named, once each."""
        return list(dict.fromkeys(self.sub(text, in_json)[1]))

    def sub(self, text: str, in_json: bool = False) -> tuple[str, list[str]]:
        """``text`` with every form of every secret replaced, and what was replaced."""
        removed: list[str] = []
        for forms in self._forms:
            text = forms.sub(text, in_json, removed)
        return text, removed


def secret_pattern(secrets: Mapping[str, str]) -> SecretPattern | None:
    kept = tuple(sorted((k, v) for k, v in secrets.items() if len(v) >= MIN_SECRET_LEN))
    if not kept:
        return None
    if any(len(v) > MAX_SECRET_CHARS for _k, v in kept):
        return SecretPattern(dict(kept))  # not kept in the cache: it holds the values
    return _pattern(kept)


@functools.lru_cache(maxsize=256)
def _pattern(secrets: tuple[tuple[str, str], ...]) -> SecretPattern:
    """One pattern per set of secrets (the log's caches know a set by its pattern); its values'
    forms are compiled once each, whatever sets they come in."""
    return SecretPattern(dict(secrets))


@functools.lru_cache(maxsize=512)
def _forms(name: str, value: str) -> _Forms:
    """Compiled once per secret value (and the name it is reported under): a client sends the
    same Authorization again and again. A value over MAX_SECRET_CHARS is not kept (it is not
    compiled either)."""
    return _Forms(name, value)
