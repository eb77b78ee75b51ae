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


class SecretPattern:
    """The exchange's secret values, each searched in every form it can be written in: as it is,
    percent-encoded (any mix), base64 (either alphabet, any alignment) and, in JSON text,
    JSON-escaped. ``find``/``sub`` work on decoded text (a body's strings, a URL) or, with
    ``in_json``, on serialized JSON (a cassette line, a log line). Every form of a value has a
    named group of one regex, so a match names its secret; both look for cheap substring probes
    first (~10x faster than the regex over a 32 KiB page). A value longer than
    :data:`bounds.MAX_SECRET_CHARS` is searched as plain text, as it is and fully percent-encoded
    (a regex of its other forms would cost seconds to build)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        names: dict[str, str] = {}
        for name, value in secrets.items():
            names.setdefault(value, name)
        self.values = sorted(names, key=len, reverse=True)  # a longer value holding a shorter one wins
        self.names: dict[str, str] = {}  # regex group -> what a match is
        self.literals: list[tuple[str, str]] = []  # (long value in a form, what it is), longest first
        decoded, escaped, probes = [], [], set()
        for i, value in enumerate(self.values):
            name = names[value]
            if len(value) > MAX_SECRET_CHARS:
                self.literals += [(value, name), (quote(value, safe=""), f"{name} (percent-encoded)")]
                continue
            forms = [(re.escape(value), name), (_percent_form(value), f"{name} (percent-encoded)")]
            forms += [(re.escape(f), f"{name} (base64)") for f in _base64_forms(value)]
            for j, (source, what) in enumerate(forms):
                group = f"s{i}_{j}"
                self.names[group] = what
                decoded.append(f"(?P<{group}>{source})")
            for j, form in enumerate(_json_forms(value)):
                group = f"s{i}_j{j}"
                self.names[group] = f"{name} (JSON-escaped)"
                escaped.append(f"(?P<{group}>{re.escape(form)})")
        # Probes: a value holding another secret is never present, in any form, without that
        # one's form (a base64 text of the whole Authorization holds one of its token's three
        # base64 cores), so only the values that hold no other are probed.
        self.always = False  # a secret with no probe: the regex always runs
        short = [v for v in self.values if len(v) <= MAX_SECRET_CHARS]
        for value in short:
            if any(o != value and o in value for o in short):
                continue
            runs = _UNRESERVED.findall(value)
            run = max(runs, key=len) if runs else ""
            if len(run) < _PROBE_MIN:
                self.always = True
            probes.add(run)
            for core in _base64_forms(value):  # its longest run that both alphabets share
                run = max(_ALNUM.findall(core), key=len, default="")
                self.always = self.always or not run
                probes.add(run)
        self.regex = re.compile("|".join(decoded)) if decoded else None
        self.json_regex = re.compile("|".join(decoded + escaped)) if decoded else None
        self.non_ascii = not all(v.isascii() for v in self.values)
        self.json_escaped = any(_JSON_ESCAPED.search(v) for v in self.values)
        probes.discard("")
        # A probe holding another is never present without it: look for the shortest ones only.
        self._probes = [p for p in probes if not any(o != p and o in p for o in probes)]

    def _probe(self, text: str) -> bool:
        if self.regex is None:
            return False
        if self.always:
            return True
        for probe in self._probes:  # a loop, not any(): it runs for every line the proxy writes
            if probe in text:
                return True
        return False

    def search(self, text: str, in_json: bool = False) -> bool:
        """Whether a secret is in ``text`` (decoded text, or serialized JSON with ``in_json``)."""
        if any(lit in text for lit, _ in self.literals):
            return True
        return self._probe(text) and (self.json_regex if in_json else self.regex).search(text) is not None

    def find(self, text: str, in_json: bool = False) -> list[str]:
        """What is in ``text``: each secret's form found, named, once each."""
        found = [what for lit, what in self.literals if lit in text]
        if self._probe(text):
            regex = self.json_regex if in_json else self.regex
            found += [self.names[m.lastgroup] for m in regex.finditer(text)]
        return list(dict.fromkeys(found))

    def sub(self, text: str, in_json: bool = False) -> tuple[str, list[str]]:
        """``text`` with every form of every secret replaced, and what was replaced (in order)."""
        removed: list[str] = []
        for lit, what in self.literals:
            if lit in text:
                removed += [what] * text.count(lit)
                text = text.replace(lit, REDACTED)
        if self._probe(text):
            def named(m: re.Match[str]) -> str:
                removed.append(self.names[m.lastgroup])
                return REDACTED

            text = (self.json_regex if in_json else self.regex).sub(named, text)
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
    """Compiled once per set of secrets: a client sends the same Authorization again and again."""
    return SecretPattern(dict(secrets))
