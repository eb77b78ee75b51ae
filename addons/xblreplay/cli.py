"""The `xblreplay` console script.

    xblreplay run [mitmdump options…]           the proxy (mitmdump -s addons/achievements.py …)
    xblreplay query --cassettes DIR URL [-H 'Name: value']…
    xblreplay lint DIR…
    xblreplay import FLOWFILE --cassettes DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from . import DEFAULT_RULES_DIR
from .cassette import CassetteError, lint
from .replay import Replayer, parse_now
from .contract import Validator

ENTRY_SCRIPT = Path(__file__).resolve().parent / "mitm" / "entry.py"  # inside the package: works installed
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
    mitmdump = shutil.which("mitmdump") or str(Path(sys.executable).with_name("mitmdump"))
    argv = [mitmdump, "-s", str(ENTRY_SCRIPT), *extra]
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

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        message = " ".join(line.strip() for line in str(e).splitlines())
        print(f"xblreplay {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
