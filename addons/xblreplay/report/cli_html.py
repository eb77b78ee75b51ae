"""`xblreplay report --log FILE --html OUT`: a validation log as one self-contained HTML page.

``add_arguments(parser)`` declares the options on the ``report`` subcommand's parser and
``run(args)`` does the work, returning the exit status: 0, or 2 with one line on stderr for bad
input (no log, not a log, unreadable rules, an output that cannot be written). Standing alone::

    python -m xblreplay.report.cli_html --log validation.jsonl --html report.html
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .. import rules_dir

PROG = "xblreplay report"


class ReportError(Exception):
    """Bad input to the HTML report: one line on stderr, exit status 2."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The HTML report's options (``--log`` selects it; the caller decides when it runs)."""
    group = parser.add_argument_group("HTML traffic report of a validation log")
    group.add_argument("--log", metavar="FILE", help="the JSON Lines validation log (achievements_log) to report on")
    group.add_argument("--html", metavar="OUT", help="where to write the HTML page (with --log)")
    try:
        group.add_argument("--rules", metavar="DIR", default=None,
                           help="rules directory whose limits.yaml and contract the run used (default: the package's)")
    except argparse.ArgumentError:  # the subcommand's own --rules (a rules directory too) serves
        pass
    group.add_argument("--examples", type=int, default=None, metavar="N",
                       help="example requests shown per rule and code (default 5)")


def run(args: argparse.Namespace) -> int:
    """Reads ``args.log``, writes ``args.html``; 0, or 2 after one line on stderr."""
    try:
        return _run(args)
    except ReportError as e:
        print(f"{PROG}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


def _rules(args: argparse.Namespace):
    """(validator, rate windows, where the limits came from) of the rules directory."""
    from ..contract import Validator
    from ..traffic import LimitsError, load_limits
    from ..traffic.limits import rate_windows

    rules = Path(args.rules) if getattr(args, "rules", None) else rules_dir()
    if not (rules / "achievements.openapi.yaml").is_file():
        raise ReportError(f"rules file not found: {rules / 'achievements.openapi.yaml'} (see --rules)")
    try:
        limits = load_limits(rules / "limits.yaml")
    except LimitsError as e:
        raise ReportError(str(e)) from None
    try:
        validator = Validator.from_rules(rules)
    except Exception as e:  # an unreadable or broken contract file: whatever the parser raises
        raise ReportError(f"cannot load the rules in {rules}: {e}") from None
    return validator, rate_windows(limits), str(rules / "limits.yaml")


def _run(args: argparse.Namespace) -> int:
    from .html import page
    from .logread import EXAMPLES, LogError, read_log

    if not args.log:
        raise ReportError("--log FILE is required")
    if not args.html:
        raise ReportError("--html OUT is required with --log")
    examples = EXAMPLES if args.examples is None else args.examples
    if examples < 0:
        raise ReportError(f"--examples expects a number from 0, got {examples}")
    validator, windows, limits_from = _rules(args)
    started = time.perf_counter()
    try:
        traffic = read_log(args.log, validator, examples)
    except LogError as e:
        raise ReportError(str(e)) from None
    text = page(traffic, windows, limits_from)
    _write(Path(args.html), text)
    print(f"{PROG}: {traffic.entries:,} requests, {traffic.summary['violations']:,} violations -> {args.html} "
          f"({len(text.encode('utf-8')) / 1024:,.0f} KiB, {time.perf_counter() - started:.2f} s)", file=sys.stderr)
    return 0


def _write(out: Path, text: str) -> None:
    """The page written whole: a temporary file beside ``out`` renamed over it, so a browser
    reloading it never reads half a page."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent if str(out.parent) else ".")
    except OSError as e:
        raise ReportError(f"{out}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"{out}: cannot write: {e.strerror or e}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
