"""What proxy a test gets: the ``achievements`` marks of the test, its class and its module merged
over the ``achievements_config`` fixture (the narrowest wins), the command line's mode and
upstream over both, paths resolved against the test file, every name and value checked by the
addon's own option table before any process starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

PREFIX = "achievements_"
MARK = "achievements"
# Options the plugin sets itself: one validation log per proxy process (read with log()).
OWN = {"log": "the plugin gives each proxy process its own validation log (read it with achievements_proxy.log())"}
# Options whose relative paths mean "beside the test file".
PATHS = ("cassettes", "rules")
DEFAULT_MODE = "replay"


class UsageError(Exception):
    """A bad mark, achievements_config or flag: one line naming what is wrong."""


def names() -> tuple[str, ...]:
    """The addon's options, as a mark names them (without the ``achievements_`` prefix)."""
    from ..proxy.options import OPTIONS

    return tuple(o.name[len(PREFIX):] for o in OPTIONS)


def merged(config: Mapping[str, Any], marks: Iterable[Any]) -> dict[str, Any]:
    """``config`` updated by ``marks`` (closest first, as ``iter_markers`` gives them): a
    module's mark, then a class's, then the function's own, the narrowest last."""
    if not isinstance(config, Mapping):
        raise UsageError(f"achievements_config must return a dict, not {type(config).__name__}")
    values = dict(config)
    for mark in reversed(list(marks)):
        if mark.args:
            raise UsageError(f"@pytest.mark.{MARK} takes keyword arguments only (e.g. cassettes=..., "
                             f"mode=...), not {mark.args!r}")
        values.update(mark.kwargs)
    return values


def options(values: Mapping[str, Any], test_file: Path, mode: str | None, upstream: str | None
            ) -> dict[str, Any]:
    """The addon's options (``achievements_*`` names) for merged ``values``; ``mode`` and
    ``upstream``: the command line's, which win when given. UsageError names a bad one."""
    from ..model import closest
    from ..proxy.options import BY_NAME, ConfigError, check_type, settings

    known = names()
    for name in values:
        if name in OWN:
            raise UsageError(f"{MARK} option {name!r} cannot be set: {OWN[name]}")
        if name not in known:
            near = closest(name.removeprefix(PREFIX), known)
            hint = f"; did you mean {near!r}?" if near else ""
            raise UsageError(f"unknown {MARK} option {name!r}{hint} (options: {', '.join(n for n in known if n not in OWN)})")
    given = {PREFIX + k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}
    if mode is not None:
        given[PREFIX + "mode"] = mode
    given.setdefault(PREFIX + "mode", DEFAULT_MODE)
    if upstream is not None:
        given[PREFIX + "upstream"] = upstream
    here = test_file.parent
    given.setdefault(PREFIX + "cassettes", str(here / "cassettes" / test_file.stem))
    for name in PATHS:
        key = PREFIX + name
        if isinstance(given.get(key), str) and given[key] and not Path(given[key]).is_absolute():
            given[key] = str(here / given[key])
    faults = given.get(PREFIX + "faults")
    if isinstance(faults, str) and Path(faults).suffix in (".yaml", ".yml") and not Path(faults).is_absolute():
        given[PREFIX + "faults"] = str(here / faults)  # a profile file beside the test; a bare name is rules/faults/'s
    full = {o.name: o.default for o in BY_NAME.values()}
    full.update(given)
    try:
        for name, value in given.items():
            check_type(name, value)
        settings(full)  # the addon's own checks: modes, the upstream URL, the clock, sizes
    except ConfigError as e:
        raise UsageError(str(e)) from None
    return given


def key(opts: Mapping[str, Any]) -> tuple:
    """What tells two configurations apart (one proxy process each)."""
    return tuple(sorted((k, repr(v)) for k, v in opts.items()))
