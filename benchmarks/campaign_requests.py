"""A seeded campaign of hostile requests through a real mitmdump in replay mode.

    .venv/bin/python benchmarks/campaign_requests.py [--requests 50000] [--seed 1] [--connections 6]
                                                     [--timeout 10] [--max-seconds 1200]

mitmdump runs the addon in replay mode on cassettes/example, listening on 127.0.0.1, as an
upstream-mode proxy whose upstream is a local sink (so a request the addon does not answer -- one
whose Host is not achievements.xboxlive.com -- goes to 127.0.0.1 and nowhere else; the sink
answers 421). Several client threads, each on its own keep-alive socket, send:

* ``valid``: requests built from the contract (rules/achievements.openapi.yaml: paths, parameter
  ranges, enums, patterns, the contract-version map) and the example cassette's ids;
* ``invalid``: the same, with one or two parts broken the way a hostile client would (huge
  integers, bytes that are not UTF-8, NUL, deep or broken update bodies, wrong methods,
  malformed Authorization, floods of parameters, huge headers);
* ``raw``: random raw HTTP/1 (malformed request lines, header lines and framing, truncated
  requests, pipelining, absolute-form to other hosts).

Every request carries a class name; the report counts answers by status class and by class, the
answers >= 500 (must be 0: a 5xx that says "xblreplay internal error" is the addon's, others are
mitmproxy's), the connections closed without an answer (by class), and mitmdump's RSS (VmRSS of
/proc/PID/status) at the start, the middle and the end. The run stops after ``--requests``
requests or ``--max-seconds``, whichever comes first, and exits non-zero when any answer was
>= 500 or the proxy stopped answering.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "addons"), str(REPO / "tests")]

from proxyharness import AUTH, HOST, XUID, Mitmdump  # noqa: E402

CONTRACT = REPO / "rules" / "achievements.openapi.yaml"
EXAMPLE = REPO / "cassettes" / "example"
ORIGIN = f"http://{HOST}"
HUGE = "9" * 5000


@dataclass
class Item:
    """One request of the campaign: its class, bytes, and how the client sends it."""

    kind: str  # valid / invalid / raw
    name: str  # the class, e.g. "invalid:huge-integer"
    data: bytes
    method: str = "GET"
    half_close: bool = False  # the request is incomplete on purpose: send, then shut down writing
    last: bool = False  # the request says Connection: close (or may make the proxy close)
    answers: int = 1  # requests in ``data`` (pipelined)


# ------------------------------------------------------------------------------- the contract


class Contract:
    """What the generator needs from the contract and the example cassette."""

    def __init__(self) -> None:
        doc = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
        self.params = doc["components"]["parameters"]
        self.operations = []  # (method, template, [query parameter names], has body)
        for template, item in doc["paths"].items():
            for method, op in item.items():
                names = [self._resolve(doc, p)["name"] for p in op.get("parameters", [])
                         if self._resolve(doc, p)["in"] == "query"]
                self.operations.append((method.upper(), template, names, "requestBody" in op))
        header = self.params["contractVersion"]
        self.contracts = list(header["x-xblreplay-contracts"])
        self.by_name = {p["name"]: p for p in self.params.values()}
        cassette = yaml.safe_load((EXAMPLE / "example.yaml").read_text(encoding="utf-8"))
        self.titles, self.scids, self.achievements = [], [], {}
        for dataset in cassette["datasets"]:
            for title in dataset["titles"]:
                self.titles.append(title["id"])
                if title.get("scid"):
                    self.scids.append(title["scid"])
                    self.achievements[title["scid"]] = [a["id"] for a in title["achievements"]]
        self.titles = sorted(set(self.titles))

    @staticmethod
    def _resolve(doc: dict, obj: dict) -> dict:
        while "$ref" in obj:
            node = doc
            for key in obj["$ref"].lstrip("#/").split("/"):
                node = node[key]
            obj = node
        return obj

    def value(self, rng: random.Random, name: str) -> str:
        """A valid value of a query parameter, from its schema."""
        schema = self.by_name[name]["schema"]
        if name == "continuationToken":
            offset = str(rng.choice([0, 1, 5, 32, rng.randint(0, 100), 2**31 - 1]))
            return offset + (",2018-03-28T01:28:51.8070000Z" if rng.random() < 0.2 else "")
        kind = schema.get("type")
        if kind == "integer":
            low, high = schema.get("minimum", 0), schema.get("maximum", 2**31 - 1)
            return str(rng.choice([low, high, rng.randint(low, min(high, 200)), rng.randint(low, high)]))
        if kind == "boolean":
            return rng.choice(["true", "false", "TRUE", "False"])
        if kind == "array":
            items = schema["items"]
            if "enum" in items:
                return ",".join(_case(rng, v) for v in rng.sample(items["enum"], rng.randint(1, len(items["enum"]))))
            return ",".join(str(rng.choice(self.titles + [rng.randint(0, 2**32 - 1)]))
                            for _ in range(rng.randint(1, 3)))
        if "enum" in schema:
            return _case(rng, rng.choice(schema["enum"]))
        return "x"


def _case(rng: random.Random, text: str) -> str:
    return rng.choice([text, text.lower(), text.upper()])


# ------------------------------------------------------------------------------- generation


class Generator:
    """Seeded: the same seed gives the same sequence of requests."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.c = Contract()
        self.raw_classes = [getattr(self, n) for n in sorted(dir(self)) if n.startswith("raw_")]
        self.mutations = [getattr(self, n) for n in sorted(dir(self)) if n.startswith("mut_")]

    def next(self) -> Item:
        roll = self.rng.random()
        if roll < 0.35:
            return self.valid()
        if roll < 0.8:
            return self.invalid()
        return self.rng.choice(self.raw_classes)()

    # -- a request as parts, then bytes
    def parts(self) -> dict:
        rng, c = self.rng, self.c
        method, template, names, has_body = rng.choice(c.operations)
        scid = rng.choice(c.scids)
        xuid = XUID if rng.random() < 0.9 else rng.randint(0, 2**64 - 1)
        achievement = rng.choice(c.achievements[scid]) if rng.random() < 0.8 else rng.randint(0, 2**32 - 1)
        path = (template.replace("{xuid}", str(xuid)).replace("{scid}", scid)
                .replace("{achievementId}", str(achievement)))
        query = [(n, c.value(rng, n)) for n in names if rng.random() < 0.4]
        headers = {"Authorization": AUTH, "x-xbl-contract-version": rng.choice(c.contracts),
                   "Accept-Language": rng.choice(["en-US", "fr-FR, en;q=0.5", "de", "en-GB,en;q=0.8,*;q=0.1"])}
        body = None
        if has_body:
            ids = rng.sample(c.achievements[scid], rng.randint(1, 3))
            body = {"action": "progressUpdate", "serviceConfigId": _case(rng, scid), "titleId": rng.choice(c.titles),
                    "userId": str(xuid), "achievements": [{"id": str(i), "percentComplete": rng.randint(1, 100)}
                                                          for i in ids]}
        return {"method": method, "path": path, "query": query, "headers": headers, "body": body,
                "template": template, "form": "absolute", "path_junk": b""}

    @staticmethod
    def build(p: dict) -> bytes:
        target = p["path"].encode("utf-8") + p["path_junk"]
        if p["query"]:
            target += b"?" + b"&".join(
                (k if isinstance(k, bytes) else k.encode("utf-8", "surrogateescape")) + b"="
                + (v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")) for k, v in p["query"])
        if p["form"] == "absolute":
            target = ORIGIN.encode() + target
        lines = [p["method"].encode("latin-1", "replace") + b" " + target + b" HTTP/1.1", b"Host: " + HOST.encode()]
        for k, v in p["headers"].items():
            lines.append(k.encode() + b": " + (v if isinstance(v, bytes) else v.encode("utf-8", "surrogateescape")))
        body = p["body"]
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        if body is not None:
            lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        if p["method"] == "HEAD":
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")

    def valid(self) -> Item:
        p = self.parts()
        return Item("valid", f"valid:{p['method']} {p['template'].rsplit('/', 2)[-2:][-1]}", self.build(p), p["method"])

    def invalid(self) -> Item:
        p = self.parts()
        names = []
        for mutate in self.rng.sample(self.mutations, self.rng.choice([1, 1, 2])):
            names.append(mutate(p))
        return Item("invalid", "invalid:" + "+".join(names), self.build(p), p["method"], last=p["method"] == "HEAD")

    # -- mutations of a request (each returns its class name)
    def _int_param(self, p: dict) -> str:
        return self.rng.choice(["maxItems", "skipItems", "titleId", "continuationToken"])

    def mut_huge_integer(self, p):
        where = self.rng.choice(["xuid", "query", "achievementId"])
        digits = "9" * self.rng.choice([21, 100, 4301, 5000, 20000])
        if where == "xuid":
            p["path"] = p["path"].replace(f"xuid({XUID})", f"xuid({digits})")
        elif where == "achievementId" and p["template"].endswith("{achievementId}"):
            p["path"] = p["path"].rsplit("/", 1)[0] + "/" + digits
        else:
            p["query"].append((self._int_param(p), digits))
        return "huge-integer"

    def mut_out_of_range(self, p):
        value = self.rng.choice(["-1", "0", "2147483648", "4294967296", "18446744073709551616", "-" + "9" * 30])
        p["query"].append((self._int_param(p), value))
        return "out-of-range"

    def mut_not_an_integer(self, p):
        value = self.rng.choice(["abc", "1.5", "1e3", " 1", "+1", "%2B1", "\u0661\u0662", "0x10", "", "1_000", "%00"])
        p["query"].append((self._int_param(p), value))
        return "not-an-integer"

    def mut_bad_enum(self, p):
        p["query"].append((self.rng.choice(["orderBy", "types", "unlockedOnly", "possibleOnly"]),
                           self.rng.choice(["Random", "yes", "1", "", "Persistent,,", "%FF", "Title%00", "t\u0131tle"])))
        return "bad-enum"

    def mut_bad_token(self, p):
        p["query"].append(("continuationToken", self.rng.choice(
            ["abc", "-1", "32,yesterday", "32%0A", "%2032", "32,2018-03-28T01:28:51.8070000", "2147483648",
             "1" + "0" * 30, "32," + "9" * 5000])))
        return "bad-token"

    def mut_not_utf8(self, p):
        p["form"] = "origin"  # mitmproxy refuses raw bytes in an absolute-form target itself
        where = self.rng.choice(["path", "query-name", "query-value"])
        junk = bytes(self.rng.choice([0x80, 0xC0, 0xED, 0xFE, 0xFF]) for _ in range(self.rng.randint(1, 4)))
        if where == "path":
            p["path_junk"] = junk
        else:
            pair = (b"x" + junk, b"1") if where == "query-name" else (b"maxItems", junk)
            p["query"].append(pair)
        return "not-utf8-" + where

    def mut_percent_oddities(self, p):
        p["query"].append((self.rng.choice(["titleId", "maxItems", "orderBy", "x%FFy"]),
                           self.rng.choice(["%FF%FE", "%ED%A0%80", "%C0%AE", "%", "%G1", "%00%00", "%E2%80%8B1"])))
        return "percent-oddities"

    def mut_nul(self, p):
        p["form"] = "origin"
        p["query"].append(("maxItems", "1\x00"))
        return "nul-byte"

    def mut_param_flood(self, p):
        n = self.rng.choice([500, 5000, 20000])
        if self.rng.random() < 0.5:
            p["query"] += [(f"p{i}", "1") for i in range(n)]
        else:
            p["query"] += [("titleId", str(self.rng.randint(0, 2**32 - 1))) for _ in range(n)]
        return "param-flood"

    def mut_long_query(self, p):
        # A megabyte is rare: the proxy's secret scrubbing of log lines takes seconds on it.
        size = self.rng.choices([10_000, 100_000, 1_000_000], weights=[80, 18, 2])[0]
        p["query"].append(("x", "a" * size))
        return "long-query"

    def mut_wrong_method(self, p):
        p["method"] = self.rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE",
                                       "POST" if p["method"] == "GET" else "GET"])
        return "wrong-method"

    def mut_odd_method(self, p):
        p["method"] = self.rng.choice(["get", "G\x01T", "BREW", "GET\x7f", "M" * 1000])
        return "odd-method"

    def mut_bad_authorization(self, p):
        value = self.rng.choice([None, "", "Bearer x", "XBL3.0 x=;t", "XBL3.0 x=1;", b"XBL3.0 x=\xff;tok",
                                 "XBL3.0 x=1;t\u00f6k", "XBL3.0 x=1;" + "t" * 100_000])
        if value is None:
            del p["headers"]["Authorization"]
        else:
            p["headers"]["Authorization"] = value
        return "bad-authorization"

    def mut_odd_contract(self, p):
        p["headers"]["x-xbl-contract-version"] = self.rng.choice(["0", "5", "-1", HUGE, b"\xff", "2 ", " 4", ""])
        return "odd-contract"

    def mut_huge_accept_language(self, p):
        n = self.rng.choice([1000, 10_000])
        p["headers"]["Accept-Language"] = ",".join(f"x{self.rng.randint(0, 10**6)}-{i};q=0.{i % 10}" for i in range(n))
        return "huge-accept-language"

    def mut_odd_accept_language(self, p):
        p["headers"]["Accept-Language"] = self.rng.choice(
            [b"\xff\xfe", "en-US;q=" + HUGE, "en-US;q=nan", "*", ";;;;", "en-US" + ";" * 10_000, "q=1,,,"])
        return "odd-accept-language"

    def mut_update_body(self, p):
        if p["body"] is None:
            p["method"], p["path"] = "POST", "/".join(p["path"].split("/")[:3]) + \
                f"/achievements/{self.rng.choice(self.c.scids)}/update"
            p["query"] = []
        n = self.rng.choice([1_000, 10_000, 100_000])
        choice = self.rng.randrange(10)
        if choice == 0:
            p["body"] = b"[" * n + b"]" * n
        elif choice == 1:
            p["body"] = b'{"a":' * n + b"1" + b"}" * n
        elif choice == 2:
            p["body"] = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200)))
        elif choice == 3:
            p["body"] = b'{"titleId": ' + HUGE.encode() + b"}"
        elif choice == 4:
            p["body"] = json.dumps({**(p["body"] or {}), "userId": str(self.rng.randint(0, 2**64 - 1))}).encode()
        elif choice == 5:
            p["body"] = json.dumps({**(p["body"] or {}), "userId": HUGE}).encode()
        elif choice == 6:
            p["body"] = b'{"action":"progressUpdate","titleId":NaN,"achievements":[{"id":"1","percentComplete":Infinity}]}'
        elif choice == 7:
            p["body"] = json.dumps({**(p["body"] or {}), "achievements": [{"id": "1", "percentComplete": 1e308}]}).encode()
        elif choice == 8:
            p["body"] = b""
        else:
            p["body"] = json.dumps({"action": "x" * 1_000_000}).encode()
        return "update-body"

    # -- raw HTTP/1 (each returns an Item)
    def _line(self, target: bytes = None) -> bytes:
        return b"GET " + (target or ORIGIN.encode() + f"/users/xuid({XUID})/achievements".encode()) + b" HTTP/1.1"

    def _head(self, extra: list[bytes] = ()) -> bytes:
        return b"\r\n".join([b"Host: " + HOST.encode(), b"Authorization: " + AUTH.encode()] + list(extra))

    def raw_garbage(self):
        data = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 300))).replace(b"\r\n\r\n", b"")
        return Item("raw", "raw:garbage-then-blank-line", data + b"\r\n\r\n", last=True)

    def _variant(self, variants: dict[str, object]) -> tuple[str, object]:
        name = self.rng.choice(sorted(variants))
        return name, variants[name]

    def raw_bad_request_line(self):
        name, line = self._variant({
            "method-only": b"GET", "no-version": b"GET /", "double-space": b"GET  / HTTP/1.1",
            "four-parts": b"GET / HTTP/1.1 x", "no-method": b"/ HTTP/1.1", "empty-authority": b"GET http:// HTTP/1.1",
            "port-out-of-range": b"GET http://achievements.xboxlive.com:99999/ HTTP/1.1",
            "http-2-version": b"GET / HTTP/2", "https-version": b"GET / HTTPS/1.1", "lowercase-version": b"GET / http/1.1"})
        return Item("raw", f"raw:bad-request-line:{name}", line + b"\r\n" + self._head() + b"\r\n\r\n", last=True)

    def raw_odd_version(self):
        version = self.rng.choice([b"HTTP/0.9", b"HTTP/1.0", b"HTTP/9.9", b"HTTP/1.2"])
        line = b"GET " + ORIGIN.encode() + f"/users/xuid({XUID})/achievements".encode() + b" " + version
        return Item("raw", "raw:odd-http-version", line + b"\r\n" + self._head([b"Connection: close"]) + b"\r\n\r\n",
                    last=True)

    def raw_non_ascii_absolute_target(self):
        target = ORIGIN.encode() + f"/users/xuid({XUID})/achievements".encode() + b"\xff\xfe"
        return Item("raw", "raw:non-ascii-absolute-target", self._line(target) + b"\r\n" + self._head() + b"\r\n\r\n",
                    last=True)

    def raw_bad_header_line(self):
        name, bad = self._variant({
            "no-colon": b"NoColonHere", "empty-name": b": empty-name", "space-in-name": b"Bad Name: x",
            "nul-in-value": b"X-Nul: a\x00b", "controls-in-value": b"X-Ctl: \x01\x02",
            "non-utf8-value": b"X-High: \xff\xfe\xfd"})
        return Item("raw", f"raw:bad-header-line:{name}", self._line() + b"\r\n" + self._head([bad]) + b"\r\n\r\n",
                    last=True)

    def raw_folded_header(self):
        return Item("raw", "raw:obs-fold-header",
                    self._line() + b"\r\n" + self._head([b"X-Folded: a", b"  b"]) + b"\r\n\r\n", last=True)

    def raw_bad_content_length(self):
        name, cl = self._variant({
            "not-a-number": [b"Content-Length: abc"], "negative": [b"Content-Length: -1"],
            "list": [b"Content-Length: 1, 2"], "two-headers": [b"Content-Length: 1", b"Content-Length: 2"],
            "over-max-body": [b"Content-Length: 99999999999999999999"]})
        return Item("raw", f"raw:bad-content-length:{name}",
                    b"POST " + ORIGIN.encode() + b"/x HTTP/1.1\r\n" + self._head(cl) + b"\r\n\r\nx", last=True)

    def raw_te_and_cl(self):
        extra = [b"Transfer-Encoding: chunked", b"Content-Length: 5"]
        return Item("raw", "raw:transfer-encoding-and-content-length",
                    b"POST " + ORIGIN.encode() + b"/x HTTP/1.1\r\n" + self._head(extra) + b"\r\n\r\n0\r\n\r\n", last=True)

    def raw_bad_transfer_encoding(self):
        te = self.rng.choice([b"gzip", b"chunked, gzip", b"bogus", b"identity"])
        return Item("raw", "raw:bad-transfer-encoding:" + te.decode().replace(", ", "-"),
                    b"POST " + ORIGIN.encode() + b"/x HTTP/1.1\r\n" + self._head([b"Transfer-Encoding: " + te])
                    + b"\r\n\r\n", last=True, half_close=True)

    def raw_bad_chunk(self):
        name, chunk = self._variant({"not-hex": b"zz\r\n", "short-then-eof": b"5\r\nabc", "negative": b"-1\r\n",
                                     "huge-size": b"ffffffffffffffffffff\r\n"})
        return Item("raw", f"raw:bad-chunk:{name}",
                    b"POST " + ORIGIN.encode() + b"/x HTTP/1.1\r\n" + self._head([b"Transfer-Encoding: chunked"])
                    + b"\r\n\r\n" + chunk, last=True, half_close=True)

    def raw_good_chunked_update(self):
        scid = self.rng.choice(self.c.scids)
        body = json.dumps({"action": "progressUpdate", "serviceConfigId": scid, "titleId": 1, "userId": str(XUID),
                           "achievements": [{"id": "1", "percentComplete": 1}]}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
        target = ORIGIN.encode() + f"/users/xuid({XUID})/achievements/{scid}/update".encode()
        return Item("raw", "raw:chunked-update",
                    b"POST " + target + b" HTTP/1.1\r\n" + self._head([b"Transfer-Encoding: chunked"])
                    + b"\r\n\r\n" + chunks + b"0\r\n\r\n", "POST")

    def raw_truncated_body(self):
        return Item("raw", "raw:truncated-body",
                    b"POST " + ORIGIN.encode() + b"/x HTTP/1.1\r\n" + self._head([b"Content-Length: 100"])
                    + b"\r\n\r\n" + b"x" * 10, last=True, half_close=True)

    def raw_truncated_head(self):
        data = (self._line() + b"\r\n" + self._head())[: self.rng.randint(1, 60)]
        return Item("raw", "raw:truncated-head", data, last=True, half_close=True)

    def raw_huge_header(self):
        size = self.rng.choices([10_000, 100_000, 1_000_000], weights=[80, 18, 2])[0]
        return Item("raw", "raw:huge-header", self._line() + b"\r\n" + self._head([b"X-Big: " + b"a" * size]) + b"\r\n\r\n")

    def raw_many_headers(self):
        # Ten thousand are rare: the addon's header dict costs time quadratic in their number.
        count = self.rng.choices([100, 1000, 10_000], weights=[60, 38, 2])[0]
        extra = [b"X-H%d: %d" % (i, i) for i in range(count)]
        return Item("raw", "raw:many-headers", self._line() + b"\r\n" + self._head(extra) + b"\r\n\r\n")

    def raw_other_host(self):
        name, host = self._variant({"other-name": b"example.invalid", "suffix": b"achievements.xboxlive.com.evil",
                                    "bad-port": b"ACHIEVEMENTS.XBOXLIVE.COM:80x",
                                    "non-utf8": b"achievements.xboxlive.com\xff"})
        data = (b"GET " + ORIGIN.encode() + b"/x HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        return Item("raw", f"raw:other-host:{name}", data, last=True)

    def raw_pipelined(self):
        one = self._line() + b"\r\n" + self._head([b"x-xbl-contract-version: 2"]) + b"\r\n\r\n"
        return Item("raw", "raw:pipelined-pair", one + one, last=True, answers=2)

    def raw_expect_continue(self):
        body = b'{"x": 1}'
        target = ORIGIN.encode() + f"/users/xuid({XUID})/achievements/{self.rng.choice(self.c.scids)}/update".encode()
        return Item("raw", "raw:expect-100-continue",
                    b"POST " + target + b" HTTP/1.1\r\n" + self._head([b"Expect: 100-continue",
                                                                       b"Content-Length: %d" % len(body)])
                    + b"\r\n\r\n" + body, "POST")

    def raw_lf_only(self):
        return Item("raw", "raw:bare-lf-line-ends",
                    (self._line() + b"\n" + self._head().replace(b"\r\n", b"\n") + b"\n\n"))

    def raw_absolute_origin_form(self):
        return Item("raw", "raw:origin-form",
                    b"GET " + f"/users/xuid({XUID})/achievements?maxItems=1".encode() + b" HTTP/1.1\r\n" + self._head()
                    + b"\r\n\r\n")


# ------------------------------------------------------------------------------- the client


class Closed(Exception):
    pass


def read_response(sock: socket.socket, buf: bytearray, method: str) -> tuple[int, dict, bytes, bool]:
    """One HTTP/1.1 response (1xx skipped): status, headers, body, whether the server closes."""
    def fill() -> None:
        chunk = sock.recv(262144)
        if not chunk:
            raise Closed()
        buf.extend(chunk)

    while True:
        while b"\r\n\r\n" not in buf:
            fill()
        end = buf.index(b"\r\n\r\n")
        head = bytes(buf[:end]).split(b"\r\n")
        del buf[:end + 4]
        status = int(head[0].split(b" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if 100 <= status < 200:
            continue
        break
    closes = headers.get("connection", "").lower() == "close"
    if method == "HEAD" or status in (204, 304):
        return status, headers, b"", closes
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            while b"\r\n" not in buf:
                fill()
            line_end = buf.index(b"\r\n")
            size = int(bytes(buf[:line_end]).split(b";")[0], 16)
            del buf[:line_end + 2]
            while len(buf) < size + 2:
                fill()
            body += buf[:size]
            del buf[:size + 2]
            if size == 0:
                return status, headers, bytes(body), closes
    if "content-length" in headers:
        size = int(headers["content-length"])
        while len(buf) < size:
            fill()
        body = bytes(buf[:size])
        del buf[:size]
        return status, headers, body, closes
    try:
        while True:
            fill()
    except Closed:
        pass
    body = bytes(buf)
    buf.clear()
    return status, headers, body, True


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.by_kind = Counter()
        self.status_class = Counter()
        self.by_class = {}  # class -> Counter of outcomes
        self.server_errors = Counter()  # (class, status, who)
        self.by_source = Counter()  # (who answered, status class)
        self.closed = Counter()  # class -> connections closed without an answer
        self.timeouts = Counter()
        self.unparseable = Counter()
        self.head_bodies = Counter()  # class of a HEAD request whose answer carried a body
        self.stale_retries = Counter()  # class of the answered request after which the proxy closed
        self.sink = 0

    def record(self, item: Item, outcome: str) -> None:
        kind, _, names = item.name.partition(":")
        with self.lock:
            self.sent += item.answers
            self.by_kind[item.kind] += item.answers
            for name in names.split("+"):  # an invalid request with two mutations counts under both
                self.by_class.setdefault(f"{kind}:{name}", Counter())[outcome] += 1

    def answered(self, item: Item, status: int, headers: dict, body: bytes) -> None:
        """Who answered: the addon (its X-Xblreplay headers, or a valid answer from the
        cassette), mitmproxy itself (its own error page), or the sink (a request for another host)."""
        if status == 421 and not body:
            who = "sink"
        elif "x-xblreplay-violations" in headers or "x-xblreplay-reason" in headers or \
                "x-xblreplay-warning" in headers or status < 400:
            who = "addon"
        elif headers.get("server", "").startswith("mitmproxy") or b"<html>" in body[:200]:
            who = "mitmproxy"
        else:
            who = "addon"
        with self.lock:
            self.by_source[(who, f"{status // 100}xx")] += 1


def worker(port: int, next_item, stats: Stats, timeout: float, stop: threading.Event) -> None:
    sock, buf, fresh, previous = None, bytearray(), True, ""
    while not stop.is_set():
        item = next_item()
        if item is None:
            break
        suspect = ""  # a kept-alive connection found closed: stale, if a fresh one answers
        for attempt in (0, 1):
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                except OSError as exc:  # the proxy did not even accept within the timeout
                    with stats.lock:
                        stats.timeouts["connect:" + type(exc).__name__] += 1
                    stats.record(item, "timeout")
                    break
                buf, fresh = bytearray(), True
            try:
                sock.sendall(item.data)
                if item.half_close:
                    sock.shutdown(socket.SHUT_WR)
                status, headers, body, closes = read_response(sock, buf, item.method)
                for _ in range(item.answers - 1):  # pipelined: every answer, the worst status counts
                    more = read_response(sock, buf, item.method)
                    status = max(status, more[0])
                if item.method == "HEAD":  # no body may follow; the proxy closes after it
                    extra = len(buf)
                    try:
                        while chunk := sock.recv(65536):
                            extra += len(chunk)
                    except OSError:
                        pass
                    if extra:
                        with stats.lock:
                            stats.head_bodies[item.name] += 1
            except (Closed, ConnectionError, BrokenPipeError) as exc:
                sock.close()
                sock = None
                if not fresh and attempt == 0 and not item.half_close:
                    suspect = previous  # retried once on a fresh connection
                    continue
                with stats.lock:
                    stats.closed[item.name if item.kind == "raw" else item.kind + ":" + type(exc).__name__] += 1
                stats.record(item, "closed")
                break
            except socket.timeout:
                sock.close()
                sock = None
                with stats.lock:
                    stats.timeouts[f"{item.name} {item.data[:24]!r}"] += 1
                stats.record(item, "timeout")
                break
            except (ValueError, IndexError):  # an answer that is not HTTP/1.1
                sock.close()
                sock = None
                with stats.lock:
                    stats.unparseable[item.name] += 1
                stats.record(item, "unparseable")
                break
            if suspect:
                with stats.lock:
                    stats.stale_retries[suspect] += 1
            fresh, previous = False, f"{item.name} -> {status}"
            cls = f"{status // 100}xx"
            with stats.lock:
                stats.status_class[cls] += 1
                if status >= 500:
                    who = "addon" if b"xblreplay" in body or "x-xblreplay-reason" in headers else "mitmproxy"
                    stats.server_errors[(item.name, status, who, body[:120])] += 1
            stats.record(item, str(status))
            stats.answered(item, status, headers, body)
            if closes or item.last or item.method == "HEAD" or item.half_close:
                sock.close()
                sock = None
            break
    if sock is not None:
        sock.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Sink:
    """The upstream of the upstream-mode proxy: 421 for anything that reaches it."""

    def __init__(self, stats: Stats) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                stats.sink += 1
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(421)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def probe(port: int) -> int | None:
    """A valid listing request on a fresh connection: its status, or None without an answer."""
    data = (f"GET {ORIGIN}/users/xuid({XUID})/achievements?maxItems=1 HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Authorization: {AUTH}\r\nx-xbl-contract-version: 2\r\nConnection: close\r\n\r\n").encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(data)
            return read_response(sock, bytearray(), "GET")[0]
    except (OSError, Closed):
        return None


def tracebacks_in(output: str) -> Counter:
    """Tracebacks in mitmdump's output by (innermost frame of the project, exception)."""
    found = Counter()
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        frame, j = "", i + 1
        while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
            text = lines[j].strip()
            if text.startswith("File") and "/xblreplay/" in text:
                frame = text.split("/xblreplay/", 1)[1].replace('", line', ":").split(",")[0]
            j += 1
        found[f"{frame}: {lines[j][:100] if j < len(lines) else '?'}"] += 1
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one answer")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop sending after this long")
    args = ap.parse_args()

    import tempfile

    stats = Stats()
    sink = Sink(stats)
    gen = Generator(args.seed)
    lock = threading.Lock()
    issued = [0]
    stop = threading.Event()
    rss = {}
    with tempfile.TemporaryDirectory(prefix="campaign-") as tmp:
        proxy = Mitmdump(Path(tmp), mode=f"upstream:{sink.url}", achievements_mode="replay",
                         achievements_cassettes=EXAMPLE, flow_detail=0, termlog_verbosity="error")
        proxy.start()
        try:
            pid = proxy.proc.pid
            rss["start"] = rss_kib(pid)
            started = time.monotonic()
            deadline = started + args.max_seconds

            def next_item() -> Item | None:
                with lock:
                    if issued[0] >= args.requests or time.monotonic() > deadline:
                        return None
                    issued[0] += 1
                    if issued[0] == args.requests // 2:
                        rss["middle"] = rss_kib(pid)
                    if issued[0] % max(500, args.requests // 10) == 0:
                        print(f"  {issued[0]} requests, {time.monotonic() - started:.0f} s, "
                              f"RSS {rss_kib(pid) // 1024} MiB", flush=True)
                    return gen.next()

            threads = [threading.Thread(target=worker, args=(proxy.port, next_item, stats, args.timeout, stop))
                       for _ in range(args.connections)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            rss["end"] = rss_kib(pid)
            alive = proxy.proc.poll() is None
            final = probe(proxy.port)
        finally:
            output = proxy.stop()
    sink.close()

    print(f"\nseed {args.seed}: {stats.sent} requests in {elapsed:.0f} s over {args.connections} connections "
          f"({stats.sent / elapsed:.0f}/s); kinds {dict(stats.by_kind)}")
    print("answers by status class:", dict(sorted(stats.status_class.items())))
    print("answers by who answered:", {f"{who} {cls}": n for (who, cls), n in sorted(stats.by_source.items())})
    print(f"answers >= 500: {sum(stats.server_errors.values())}")
    for (name, status, who, body), n in stats.server_errors.most_common():
        print(f"  {n:6d}  {status} from {who}  {name}  {body!r}")
    print(f"connections closed without an answer: {sum(stats.closed.values())}")
    for name, n in stats.closed.most_common():
        print(f"  {n:6d}  {name}")
    print(f"timeouts (no answer within {args.timeout:g} s): {sum(stats.timeouts.values())}")
    for name, n in stats.timeouts.most_common():
        print(f"  {n:6d}  {name}")
    print(f"answers that were not HTTP/1.1: {sum(stats.unparseable.values())}")
    for name, n in stats.unparseable.most_common():
        print(f"  {n:6d}  {name}")
    print(f"kept-alive connections the proxy closed after an answer without saying so (request retried): "
          f"{sum(stats.stale_retries.values())}")
    for name, n in stats.stale_retries.most_common(10):
        print(f"  {n:6d}  after {name}")
    print(f"HEAD answers that carried a body: {sum(stats.head_bodies.values())}")
    for name, n in stats.head_bodies.most_common(10):
        print(f"  {n:6d}  {name}")
    print(f"requests that reached the sink (another host): {stats.sink}")
    print("outcomes by class:")
    for name in sorted(stats.by_class):
        print(f"  {name:58s} {dict(sorted(stats.by_class[name].items()))}")
    print(f"mitmdump RSS: start {rss['start'] // 1024} MiB, middle {rss.get('middle', 0) // 1024} MiB, "
          f"end {rss['end'] // 1024} MiB")
    print(f"proxy alive at the end: {alive}; a valid request afterwards: {final}")
    tracebacks = tracebacks_in(output)
    print(f"tracebacks in mitmdump's output: {sum(tracebacks.values())}; "
          f"internal errors answered 500: {output.count('xblreplay internal error')}")
    for where, n in tracebacks.most_common():
        print(f"  {n:6d}  {where}")
    ok = not stats.server_errors and not stats.unparseable and alive and final == 200
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
