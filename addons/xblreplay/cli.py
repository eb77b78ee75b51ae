"""The `xblreplay` console script.

    xblreplay run [mitmdump options…]           the proxy (mitmdump -s addons/achievements.py …)
    xblreplay query --cassettes DIR URL [-H 'Name: value']…
    xblreplay lint DIR…
    xblreplay import FLOWFILE --cassettes DIR
    xblreplay generate --out DIR --users N --titles M --achievements K [knobs…]
    xblreplay report DIR [--json] [--max-age 30d]   what the cassettes cover, and how old it is
    xblreplay report --log validation.jsonl --html report.html
    xblreplay show DIR --xuid N [--title T] [--locale L]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from . import DEFAULT_RULES_DIR
from .cassette import CassetteError, lint
from .replay import Replayer, parse_now
from .contract import Validator
from .report.cli import register as register_reports

ENTRY_SCRIPT = Path(__file__).resolve().parent / "mitm" / "entry.py"  # inside the package: works installed


def mitmdump_path() -> Path:
    """The mitmdump installed beside this Python (the environment the package is installed in,
    with its dependencies), else the first one on PATH."""
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.exists():
        return beside
    found = shutil.which("mitmdump")
    return Path(found) if found else beside

# `xblreplay query` has no token to send; this placeholder passes the R8 Authorization check.
CLI_AUTH = "XBL3.0 x=xblreplay-cli;offline"


class UsageError(Exception):
    """Bad input to a subcommand: one line on stderr, exit status 2."""


def _headers(pairs: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H expects 'Name: value', got {pair!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _validator(rules: str) -> Validator:
    if not Path(rules, "achievements.openapi.yaml").is_file():
        raise UsageError(f"rules file not found: {Path(rules, 'achievements.openapi.yaml')} (see --rules)")
    try:
        return Validator.from_rules(Path(rules))
    except Exception as e:  # an unreadable or broken contract file: whatever the parser raises
        raise UsageError(f"cannot load the rules in {rules}: {e}") from None


def cmd_query(args: argparse.Namespace) -> int:
    headers = _headers(args.header)
    headers.setdefault("authorization", CLI_AUTH)
    try:
        now = parse_now(args.now)
    except ValueError:
        raise UsageError(f"--now expects an ISO time such as 2026-11-20T00:00:00Z, got {args.now!r}") from None
    try:
        urlsplit(args.url)  # the proxy only ever sees URLs that parse; this one comes from a user
    except ValueError as e:
        raise UsageError(f"cannot read the URL {args.url!r}: {e}") from None
    validator = _validator(args.rules)
    try:
        replayer = Replayer.from_dir(
            validator, args.cassettes, strict_coverage=args.strict_coverage,
            now=(lambda: now) if now else None,
        )
    except CassetteError as e:
        raise UsageError(f"cassette {e}" if e.line else f"cassettes {e.file}: {e.reason}") from None
    except ValueError as e:  # a hand-written dataset the engine cannot expand
        raise UsageError(f"cassette {e}") from None
    check, answer = replayer.handle(args.method, args.url, headers)
    print(f"HTTP {answer.status}  ({answer.source}{': ' + answer.reason if answer.reason else ''})")
    for name, value in answer.headers:
        print(f"{name}: {value}")
    for v in check.violations + [v for v in answer.violations if v not in check.violations]:
        print(f"# {v.severity} {v.rule} {v.location}:{v.name}: {v.message}")
    if isinstance(answer.body, (bytes, bytearray)):
        sys.stdout.write(answer.body.decode("utf-8", "replace") + "\n")
    elif answer.body is not None:
        print(json.dumps(answer.body, indent=2, ensure_ascii=False))
    return 0 if answer.status < 400 else 1


def cmd_lint(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file or directory")
    errors = [e for path in args.paths for e in lint(path)]
    for e in errors:
        print(str(e))
    if errors:
        print(f"{len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("cassettes OK")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .mitm.flows import FlowFileError, import_flows  # reads mitmproxy flow files
    from .redact import LeakError

    if os.path.exists(args.cassettes) and not os.path.isdir(args.cassettes):
        raise UsageError(f"--cassettes {args.cassettes}: not a directory")
    try:
        count = import_flows(args.flowfile, args.cassettes)
    except FlowFileError as e:
        raise UsageError(str(e)) from None
    except (CassetteError, LeakError) as e:
        raise UsageError(f"not written: {e}") from None
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or args.cassettes}: {e.strerror or e}") from None
    print(f"imported {count} flow(s) into {args.cassettes}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from . import synth

    started = time.perf_counter()  # for the summary line only: nothing written depends on it
    try:
        spec = synth.Spec(users=args.users, titles=args.titles, achievements=args.achievements,
                          locales=tuple(x.strip() for x in args.locales.split(",")), unlocked=args.unlocked,
                          challenges=args.challenges, secret=args.secret, v1_titles=args.v1_titles,
                          seed=args.seed, now=args.now, form=args.form)
        report = synth.generate(spec, args.out, progress=args.progress)
    except (synth.SpecError, synth.OutputError) as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"cannot write {e.filename or args.out}: {e.strerror or e}") from None
    except KeyboardInterrupt:
        raise UsageError(f"interrupted: nothing was written to {args.out}") from None
    print("\n".join(synth.summary(spec, report, time.perf_counter() - started)))
    return 0


GENERATE_EPILOG = """--achievements K is the size of each user's full listing: the M titles hold K achievements
in all (each title at least one, the rest spread unevenly), and every user has every title. So
--users 3 --titles 200 --achievements 10000 gives three users whose unfiltered listing has 10,000
achievements each: 30,000 entries per locale. Times (unlocks, Challenge windows) are relative to
--now, a fixed instant unless given, so the same arguments always write the same bytes. Forms:
block YAML up to {limit:,} entries (users x achievements x locales), the JSON form above (--form
forces either). README, "Generating datasets", says more."""


RUN_USAGE = """usage: xblreplay run [--set achievements_NAME=VALUE]... [mitmdump arguments]...

Start the proxy: mitmdump with the xblreplay addon and the arguments given.

xblreplay options:
{options}

A bad value, or a misspelt achievements_ option name, stops the proxy at start with one line.
Every other argument goes to mitmdump as it is (mitmdump --help lists them), for example
--listen-port 8080, --set confdir=DIR, -w FLOWFILE."""


def run_help() -> str:
    from .proxy.options import help_text  # the option table, shared with the addon

    return RUN_USAGE.format(options=help_text())


def cmd_run(extra: list[str]) -> int:
    if "-h" in extra or "--help" in extra:
        print(run_help())
        return 0
    argv = [str(mitmdump_path()), "-s", str(ENTRY_SCRIPT), *extra]
    os.execv(argv[0], argv)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:
        return cmd_run(argv[1:])
    parser = argparse.ArgumentParser(prog="xblreplay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the proxy (arguments go to mitmdump)")

    q = sub.add_parser("query", help="answer one request offline from cassettes")
    q.add_argument("url")
    q.add_argument("--cassettes", default="cassettes")
    q.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    q.add_argument("-X", "--method", default="GET")
    q.add_argument("--now", help="proxy clock for EndingSoon (ISO time)")
    q.add_argument("--strict-coverage", action="store_true")
    q.add_argument("--rules", default=str(DEFAULT_RULES_DIR))
    q.set_defaults(func=cmd_query)

    lt = sub.add_parser("lint", help="check cassette files or directories")
    lt.add_argument("paths", nargs="+")
    lt.set_defaults(func=cmd_lint)

    im = sub.add_parser("import", help="turn a mitmdump -w flow file into cassettes")
    im.add_argument("flowfile")
    im.add_argument("--cassettes", default="cassettes")
    im.set_defaults(func=cmd_import)

    from .synth import DEFAULT_NOW, DEFAULT_SEED, FORMS, JSON_FORM_ENTRIES  # the knobs' defaults

    ge = sub.add_parser("generate", help="write a synthetic dataset (cassettes) from a few knobs",
                        epilog=GENERATE_EPILOG.format(limit=JSON_FORM_ENTRIES),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ge.add_argument("--out", required=True, help="new (or empty) directory to write the cassettes to")
    ge.add_argument("--users", type=int, default=1, help="users (xuids 2533274900000001, …02, …) (default 1)")
    ge.add_argument("--titles", type=int, default=10, help="titles every user has (default 10)")
    ge.add_argument("--achievements", type=int, default=500,
                    help="achievements in each user's listing, spread over the titles (default 500)")
    ge.add_argument("--locales", default="en-US", help="comma-separated locales, one dataset each (default en-US)")
    ge.add_argument("--unlocked", type=float, default=0.4, help="share of each user's achievements unlocked (default 0.4)")
    ge.add_argument("--challenges", type=float, default=0.1,
                    help="share of the Xbox One titles' achievements that are Challenges with time windows (default 0.1)")
    ge.add_argument("--secret", type=float, default=0.05, help="share of achievements that are secret (default 0.05)")
    ge.add_argument("--v1-titles", type=float, default=0.1,
                    help="share of titles that are Xbox 360 titles, served in the V1 shape (default 0.1)")
    ge.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    ge.add_argument("--now", default=DEFAULT_NOW, help=f"the instant times are relative to (default {DEFAULT_NOW})")
    ge.add_argument("--form", choices=FORMS, default="auto", help="cassette form (default auto: by size)")
    ge.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bar on stderr (default: when stderr is a terminal)")
    ge.set_defaults(func=cmd_generate)
    register_reports(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        message = " ".join(line.strip() for line in str(e).splitlines())
        print(f"xblreplay {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
