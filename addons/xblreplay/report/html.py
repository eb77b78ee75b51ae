"""The HTML traffic report of a validation log: one self-contained page (inline CSS and SVG, no
script, nothing fetched), written from a :class:`logread.Traffic`.

Everything that came from the log is escaped (:func:`svg.esc`): a URL holding ``<script>`` is
shown as text. URLs are shown as logged (secrets already removed by the proxy) and never made
into links, so the page names no address it could fetch.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from ..traffic.window import Window
from . import svg
from .logread import Traffic, bin_edges
from .svg import esc

TIMELINES = 12  # callers drawn (those with the most call-pattern findings)
CALLER_ROWS = 20  # callers listed with their findings
MISSING_ROWS = 200  # (xuid, titleId) rows of the coverage table

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212529;background:#f8f9fa}
header{background:#1b2a3a;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#ced4da}nav{padding:6px 28px;background:#e9ecef;position:sticky;top:0}
nav a{margin-right:16px;color:#1c4f82;text-decoration:none}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e9ecef;vertical-align:top}
th{background:#f1f3f5;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.t{white-space:nowrap}.url{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #dee2e6;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}.card span{color:#6c757d}
.sev{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;color:#fff}.sev.error{background:#c92a2a}
.sev.warning{background:#e67700}.sev.other{background:#868e96}
details{border-top:1px solid #e9ecef;padding:6px 0}summary{cursor:pointer}summary code{font-weight:600}
.note{color:#6c757d}.warn{color:#a61e1e}.none{color:#6c757d;font-style:italic}
svg.chart{display:block;margin:6px 0;font:11px system-ui,sans-serif}svg.chart text{fill:#343a40}
svg .grid{stroke:#e9ecef}svg .load{fill:none;stroke:#1c7ed6;stroke-width:1.5}svg .panel{font-weight:600}
svg rect.ok{fill:#2f9e44}svg rect.redirect{fill:#1971c2}svg rect.client{fill:#e67700}svg rect.server{fill:#c92a2a}
svg rect.none{fill:#868e96}svg rect.src{fill:#5c7cfa}svg rect.lat{fill:#4c6ef5}svg rect.req{fill:#74c0fc}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


def _utc(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _status_class(code: str) -> str:
    n = int(code) if code.isdigit() else 0
    return {2: "ok", 3: "redirect", 4: "client", 5: "server"}.get(n // 100, "none")


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """A table; cells are escaped, columns in ``numeric`` right-aligned."""
    out = ["<table><tr>", *(f'<th{" class=n" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(head)), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(
            f'<td{" class=n" if i in numeric else ""}>{esc(f"{c:,}" if isinstance(c, int) else c)}</td>'
            for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _header(t: Traffic) -> str:
    notes = []
    if t.partial_tail:
        notes.append("the last line was still being written and is left out")
    if t.skipped_count:
        notes.append(f"{t.skipped_count:,} unreadable line(s) skipped (line {', '.join(map(str, t.skipped))}"
                     f"{', …' if t.skipped_count > len(t.skipped) else ''})")
    runs = len(t.logged_summaries)
    ended = (f"{runs} run(s) ended cleanly (summary line)" if runs else
             "no summary line: the run is still going or did not stop cleanly")
    return (f"<header><h1>xblreplay traffic report</h1><p>{esc(t.path)} · {t.lines:,} lines, {t.entries:,} requests · "
            f"{esc(_utc(t.first_time))} – {esc(_utc(t.last_time))} · {esc(ended)}</p>"
            + "".join(f'<p class="warn">{esc(n)}</p>' for n in notes) + "</header>")


def _summary(t: Traffic) -> str:
    s = t.summary
    status = s["status"]
    errors = sum(g.count for g in t.groups.values() if g.severity == "error")
    cards = [("requests", s["requests"]), ("violations", s["violations"]), ("errors", errors),
             ("throttled (429)", status.get("429", 0)),
             ("5xx", sum(n for k, n in status.items() if k.startswith("5"))),
             ("no answer", status.get("0", 0)), ("redactions", s["redactions"]), ("not recorded", s["not_recorded"])]
    out = ['<section id="summary"><h2>Run summary</h2><div class="cards">']
    out += [f"<div class=card><b>{n:,}</b><span>{esc(label)}</span></div>" for label, n in cards]
    out.append("</div>")
    rows = [(k, v) for k, v in s["violations_by_rule"].items()]
    out.append("<h3>Violations by rule</h3>" + (_table(("rule", "count"), rows, (1,)) if rows else '<p class="none">none</p>'))
    rows = [(k, v) for k, v in t.modes.most_common()] + [(f"endpoint {k}", v) for k, v in t.endpoints.most_common()]
    out.append("<h3>Modes and endpoints</h3>" + _table(("", "requests"), rows, (1,)))
    if s["redactions_by_what"]:
        out.append("<h3>Values removed from recorded bodies</h3>"
                   + _table(("what", "count"), list(s["redactions_by_what"].items()), (1,)))
    if t.logged_summaries:
        last = t.logged_summaries[-1]
        episodes = last.get("call_pattern_episodes") or {}
        if isinstance(episodes, dict) and episodes:
            rows = [(code, *(int(e.get(k, 0)) for k in ("episodes", "requests", "longest")))
                    for code, e in episodes.items() if isinstance(e, dict)]
            out.append("<h3>Call-pattern episodes (the log's last summary line)</h3>"
                       + _table(("code", "episodes", "requests counted", "longest episode"), rows, (1, 2, 3)))
        forgotten = last.get("forgotten_at_cap")
        if isinstance(forgotten, dict) and any(forgotten.values()):
            out.append(f'<p class="warn">Forgotten at the tracking caps: {esc(forgotten)}</p>')
        if runs_differ(t):
            out.append('<p class="note">The log\'s last summary line counts '
                       f'{esc(last.get("requests"))} requests: the file holds more than one run, and this '
                       'report counts every request in it.</p>')
    out.append("</section>")
    return "".join(out)


def runs_differ(t: Traffic) -> bool:
    """Whether the log's own (last) summary counts other requests than the entries read."""
    return bool(t.logged_summaries) and t.logged_summaries[-1].get("requests") != t.summary["requests"]


def _violations(t: Traffic) -> str:
    out = ['<section id="violations"><h2>Violations by rule and code</h2>']
    if not t.groups:
        out.append('<p class="none">no violations</p>')
    order = sorted(t.groups.values(), key=lambda g: (g.severity != "error", -g.count, g.rule, g.code))
    for g in order:
        sev = g.severity if g.severity in ("error", "warning") else "other"
        out.append(f'<details{" open" if sev == "error" else ""}><summary><span class="sev {sev}">{esc(g.severity or "?")}</span> '
                   f'<code>{esc(g.rule)}</code> · <code>{esc(g.code or "(no code)")}</code> · <b>{g.count:,}</b> '
                   f'— {esc(g.messages[0] if g.messages else "")}</summary>')
        if len(g.messages) > 1:
            out.append("<p class=note>other messages: " + " · ".join(esc(m) for m in g.messages[1:]) + "</p>")
        rows = []
        for e in g.examples:
            rows.append(f'<tr><td class="t">{esc(e.time)}</td><td>{esc(e.method)}</td><td class="url">{esc(e.url)}</td>'
                        f'<td class=n>{esc("—" if e.status is None else e.status)}</td><td>{esc(e.name)}</td></tr>')
        shown = f"first {len(g.examples)} of {g.count:,}" if g.count > len(g.examples) else f"all {g.count:,}"
        out.append(f"<table><tr><th>time</th><th>method</th><th>URL (as logged) — {shown}</th><th class=n>status</th>"
                   f"<th>name</th></tr>{''.join(rows)}</table></details>")
    out.append("</section>")
    return "".join(out)


def _patterns(t: Traffic, windows: Sequence[Window], limits_from: str) -> str:
    flagged = sorted((c for c in t.callers.values() if c.findings),
                     key=lambda c: (-sum(c.findings.values()), c.xuid, c.title))
    out = ['<section id="patterns"><h2>Call patterns</h2>',
           f'<p class="note">Limits from {esc(limits_from)}: '
           + ", ".join(f"{esc(w.name)} {w.limit:,} per {svg.number(w.period)} s" for w in windows)
           + f". {len(t.callers):,} callers (xuid, title) in the log, {len(flagged):,} with findings.</p>"]
    if not flagged:
        out.append('<p class="none">no call-pattern findings</p></section>')
        return "".join(out)
    rows = [(str(c.xuid), c.title, len(c.times), ", ".join(f"{k} ×{n}" for k, n in c.findings.most_common()))
            for c in flagged[:CALLER_ROWS]]
    out.append(_table(("xuid", "title", "requests", "findings"), rows, (2,)))
    if len(flagged) > CALLER_ROWS:
        out.append(f'<p class="note">and {len(flagged) - CALLER_ROWS:,} more callers with findings</p>')
    out.append('<p class="legend">' + "".join(f'<span><i style="background:{c}"></i>{esc(code)}</span>'
                                              for code, c in svg.MARK_COLOURS.items()) + "</p>")
    for c in flagged[:TIMELINES]:
        out.append(f"<h3>xuid {esc(c.xuid)} · title {esc(c.title)} — {len(c.times):,} requests, "
                   f"{_utc(min(c.times))} – {_utc(max(c.times))}</h3>")
        out.append(svg.timeline(c.times, c.marks, windows))
    if len(flagged) > TIMELINES:
        out.append(f'<p class="note">timelines of the {TIMELINES} callers with the most findings</p>')
    out.append("</section>")
    return "".join(out)


def _answers(t: Traffic) -> str:
    status = [(f"{k}" if k != "0" else "no answer", n, _status_class(k)) for k, n in t.summary["status"].items()]
    source = [(k, n, "src") for k, n in sorted(t.summary["source"].items(), key=lambda kv: -kv[1])]
    return (f'<section id="answers"><h2>Statuses and sources</h2><h3>Status the client got</h3>{svg.bars(status)}'
            f"<h3>Who answered</h3>{svg.bars(source)}</section>")


def _timing(t: Traffic) -> str:
    out = ['<section id="timing"><h2>Latency and request times</h2>']
    if t.latency_count:
        used = [i for i, n in enumerate(t.latency_bins) if n]
        bins = [(*bin_edges(i), t.latency_bins[i]) for i in range(min(used), max(used) + 1)]
        pct = " · ".join(f"p{int(q * 100)} ≤ {svg.number(t.latency_percentile(q))} ms" for q in (0.5, 0.9, 0.99))
        out.append(f"<p>{t.latency_count:,} requests with a latency (time from request to answer at the proxy): "
                   f"{esc(pct)}</p>{svg.histogram(bins)}")
    if t.no_latency:
        out.append(f'<p class="note">{t.no_latency:,} requests logged without a latency</p>')
    out.append(f"<h3>Requests over time</h3>{svg.rate(t.per_second)}</section>")
    return "".join(out)


def _coverage(t: Traffic) -> str:
    out = ['<section id="coverage"><h2>Coverage warnings (R2)</h2>']
    group = t.groups.get(("R2", "coverage"))
    if not t.missing:
        out.append('<p class="none">no coverage warnings</p></section>')
        return "".join(out)
    out.append(f"<p>{group.count if group else 0:,} answers may be partial: these (xuid, titleId) are not recorded "
               "completely in the cassettes.</p>")
    rows = [(str(x), title, n) for (x, title), n in sorted(t.missing.items(), key=lambda kv: (-kv[1], kv[0]))[:MISSING_ROWS]]
    out.append(_table(("xuid", "titleId", "warnings naming it"), rows, (2,)))
    if len(t.missing) > MISSING_ROWS:
        out.append(f'<p class="note">and {len(t.missing) - MISSING_ROWS:,} more pairs</p>')
    if t.missing_more:
        out.append(f'<p class="note">warnings also counted {t.missing_more:,} pairs beyond the ones they name</p>')
    out.append("</section>")
    return "".join(out)


def page(t: Traffic, windows: Sequence[Window], limits_from: str) -> str:
    """The whole page."""
    nav = "".join(f'<a href="#{a}">{esc(label)}</a>' for a, label in (
        ("summary", "Summary"), ("violations", "Violations"), ("patterns", "Call patterns"),
        ("answers", "Statuses"), ("timing", "Latency"), ("coverage", "Coverage")))
    # The policy forbids every fetch and every script: were anything from the log ever to get
    # past the escaping, the page would still load nothing and run nothing.
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<meta name=viewport content='width=device-width'><title>xblreplay report · {esc(t.path)}</title>"
            f"<style>{CSS}</style></head><body>{_header(t)}<nav>{nav}</nav><main>"
            + _summary(t) + _violations(t) + _patterns(t, windows, limits_from) + _answers(t) + _timing(t)
            + _coverage(t) + "</main></body></html>\n")
