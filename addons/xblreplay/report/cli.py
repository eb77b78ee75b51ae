"""The `report` and `show` subcommands: their arguments and their runs (exit status 0 fine,
1 stale data with --max-age or nothing to show, 2 bad input or a broken cassette).

    python -m xblreplay.report.cli report DIR [--json] [--max-age 30d] [--now ISO]
    python -m xblreplay.report.cli report [DIR] --log FILE --html OUT     (the HTML report)
    python -m xblreplay.report.cli show DIR --xuid N [--title T] [--locale L] [--shape V1|V2]

`register(subparsers)` adds both to the `xblreplay` console script.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .. import DEFAULT_RULES_DIR
from ..cassette import CassetteError
from ..contract import Validator
from ..replay import Replayer, parse_now

EXIT_OK, EXIT_STALE, EXIT_USAGE = 0, 1, 2

REPORT_EPILOG = """Exit status: 0 when nothing is stale, 1 when --max-age is given and some recorded
data is older than it at --now, 2 on bad arguments or a broken cassette (FILE:LINE: reason).
Hand-written and generated datasets carry no recording time and are never stale. With --log the
HTML report of a validation log is written instead (--html OUT)."""


class _Refused(Exception):
    """Bad input: one line on stderr, exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `report` and `show` to a subcommand parser (the `xblreplay` console script's)."""
    rp = subparsers.add_parser("report", help="what the cassettes cover, and how old it is",
                               epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("dir", nargs="?", metavar="DIR", help="cassette directory")
    rp.add_argument("--json", action="store_true", help="the same facts as JSON on stdout")
    rp.add_argument("--max-age", metavar="AGE",
                    help="mark recordings older than AGE (a number and s, m, h, d or w: 30d) stale; exit 1 if any")
    rp.add_argument("--now", metavar="ISO", help="the time ages are measured at (default: now)")
    rp.add_argument("--rules", metavar="DIR", default=str(DEFAULT_RULES_DIR),
                    help="rules directory (default: the package's)")
    try:  # the HTML report's options (--log, --html, …): its module declares them
        from .cli_html import add_arguments
    except ImportError:  # an installation without it still reads the options, and refuses --log
        rp.add_argument("--log", metavar="FILE", help="a JSON Lines validation log: write its HTML report instead")
        rp.add_argument("--html", metavar="OUT", help="where the HTML report of --log goes")
    else:
        add_arguments(rp)
    rp.set_defaults(func=run_report)

    sp = subparsers.add_parser("show", help="a dataset as a table, as replay answers it")
    sp.add_argument("dir", metavar="DIR", help="cassette directory")
    sp.add_argument("--xuid", type=int, required=True)
    sp.add_argument("--title", type=int, help="one title id (default: every title)")
    sp.add_argument("--locale", help="the dataset's locale (default: the first recorded, R6)")
    sp.add_argument("--shape", choices=("V1", "V2"), type=str.upper,
                    help="V2 (Xbox One) or V1 (Xbox 360) (default: V2 when the user has it)")
    sp.add_argument("--rules", metavar="DIR", default=str(DEFAULT_RULES_DIR),
                    help="rules directory (default: the package's)")
    sp.set_defaults(func=run_show)


def _guarded(name: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return run(args)
    except _Refused as e:
        print(f"xblreplay {name}: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE


def _load(args: argparse.Namespace) -> tuple[Replayer, Validator]:
    """The cassettes of DIR, loaded as replay loads them; a broken one refused in one line."""
    if not args.dir or not Path(args.dir).is_dir():
        raise _Refused(f"{args.dir or 'DIR'}: not a cassette directory")
    try:
        validator = Validator.from_rules(Path(args.rules))
    except Exception as e:  # an unreadable or broken contract file: whatever the parser raises
        raise _Refused(f"cannot load the rules in {args.rules}: {e}") from None
    try:
        return Replayer.from_dir(validator, args.dir), validator
    except CassetteError as e:
        raise _Refused(f"cassette {e}" if e.line else f"cassettes {e.file}: {e.reason}") from None
    except ValueError as e:  # a hand-written dataset the engine cannot expand
        raise _Refused(f"cassette {e}") from None


def run_report(args: argparse.Namespace, clock: Callable[[], datetime] | None = None) -> int:
    """`report`: the coverage table (or --json); with --log, the HTML report (report.cli_html)."""
    return _guarded("report", lambda a: _report(a, clock), args)


def _report(args: argparse.Namespace, clock: Callable[[], datetime] | None) -> int:
    from . import tables
    from .coverage import HELD_COLUMNS, TITLE_COLUMNS, Coverage, parse_age

    if args.log:
        try:
            from . import cli_html
        except ImportError:
            raise _Refused("--log: the HTML report is not part of this installation") from None
        return cli_html.run(args)
    if args.html:
        raise _Refused("--html needs --log FILE (the validation log to report on)")
    try:
        max_age = parse_age(args.max_age) if args.max_age else None
    except ValueError as e:
        raise _Refused(str(e)) from None
    try:
        now = parse_now(args.now) if args.now else (clock or (lambda: datetime.now(timezone.utc)))()
    except ValueError:
        raise _Refused(f"--now expects an ISO time such as 2026-11-20T00:00:00Z, got {args.now!r}") from None
    replayer, validator = _load(args)
    report = Coverage(replayer, validator, now, max_age)
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        def style(row: tuple) -> str | None:
            return "red" if "STALE" in row else ("yellow" if "partial" in row else None)

        tables.render(TITLE_COLUMNS, report.title_cells(), title="titles", style=style,
                      numeric=("known", "unlocked"), wrap=("name", "origin", "why"))
        if report.held:
            print()
            tables.render(HELD_COLUMNS, report.held_cells(), title="exact interactions held for other paths",
                          style=style, wrap=("url",))
        print(f"summary: {report.summary()}")
    return EXIT_STALE if report.stale_count else EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    """`show`: the dataset's achievements as a table; exit 1 when the engine has none to show."""
    return _guarded("show", _show, args)


def _show(args: argparse.Namespace) -> int:
    from . import tables
    from .show import COLUMNS, NothingToShow, show

    replayer, validator = _load(args)
    try:
        shown = show(replayer, validator, args.xuid, args.title, args.locale, args.shape)
    except NothingToShow as e:
        print(f"xblreplay show: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_STALE
    tables.render(COLUMNS, shown.rows, title=shown.heading, numeric=("gamerscore",), wrap=("name",))
    for note in shown.notes:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xblreplay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
