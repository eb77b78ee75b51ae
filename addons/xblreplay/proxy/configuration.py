"""The configuration in force: what checked :class:`Settings` build (contract, cassettes, limits,
faults, log, recorder), built whole before any of it replaces what was in force."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ..cassette import CassetteError
from ..contract import Validator
from ..diff import DiffRules, load_diff_rules
from ..faults import FaultInjector, load_profile
from .options import ConfigError, Settings
from ..mode import Mode
from ..recording import RecorderProcess
from ..replay import Replayer
from ..traffic import CallPatterns, Throttle, load_limits
from ..vlog import ValidationLog

logger = logging.getLogger("xblreplay")

# How long stopping the proxy waits for the recorder child; it finishes writing on its own after.
RECORDER_CLOSE_S = 3.0


@dataclass
class Configuration:
    settings: Settings
    validator: Validator
    replayer: Replayer | None
    throttle: Throttle | None
    patterns: CallPatterns
    faults: FaultInjector | None
    log: ValidationLog
    recorder: RecorderProcess | None
    loaded_in: float = 0.0  # seconds the cassettes took to load
    diff_rules: DiffRules | None = None  # diff mode: rules/diff.yaml (what a comparison leaves out)

    @property
    def mode(self) -> Mode:
        return self.settings.mode

    @property
    def upstream(self) -> tuple[str, str, int, str] | None:
        return self.settings.upstream

    def close_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.close(RECORDER_CLOSE_S)
            self.recorder = None

    def announce(self) -> None:
        """The start-up lines saying what the cassettes gave."""
        if self.replayer is not None:
            logger.info(loaded_line(self.replayer, self.loaded_in))
            if not self.mode.forwards and self.replayer.files == 0:
                logger.warning(f"xblreplay: no cassette files in {self.settings.cassettes}: "
                               "replay has nothing to answer from")
            if self.mode.compares and self.replayer.files == 0:
                logger.warning(f"xblreplay: no cassette files in {self.settings.cassettes}: "
                               "diff has nothing to compare with (every answer differs, R9)")
        if self.settings.diff_record and not self.mode.compares:
            logger.warning(f"xblreplay: achievements_diff_record has no effect in {self.mode} mode")


def build(s: Settings, previous: Configuration | None) -> Configuration:
    """The configuration ``s`` describes, or ConfigError naming the option; ``previous`` (the one
    in force) keeps its log and recorder when they stay the same, and is left untouched on error."""
    contract = s.rules / "achievements.openapi.yaml"
    if not contract.is_file():
        raise ConfigError(f"achievements_rules: rules file not found: {contract}")
    validator = _load("achievements_rules", Validator.from_rules, s.rules)
    diff_rules = _load("achievements_rules", load_diff_rules, s.rules) if s.mode.compares else None
    if s.mode.compares and not s.cassettes.is_dir():  # checked before recording could create it
        raise ConfigError(f"achievements_cassettes: {s.cassettes}: "
                          f"{'not a directory' if s.cassettes.exists() else 'cassette directory does not exist'} "
                          "(diff mode compares with the cassettes)")
    if s.records:  # replay-or-record starts from an empty directory too
        try:
            s.cassettes.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"achievements_cassettes: cannot create {s.cassettes}: {e.strerror}") from None
    replayer, loaded_in = None, 0.0
    if s.replays or s.cassettes.exists():
        started = time.monotonic()
        try:
            replayer = Replayer.from_dir(validator, s.cassettes, strict_coverage=s.strict_coverage,
                                         now=(lambda: s.now) if s.now else None)
        except CassetteError as e:
            raise ConfigError(f"achievements_cassettes: {e}") from None
        except ValueError as e:  # a hand-written dataset the engine cannot expand
            raise ConfigError(f"achievements_cassettes: {e}") from None
        loaded_in = time.monotonic() - started
    limits = _load("achievements_rules", load_limits, s.rules / "limits.yaml")
    faults = None
    if s.faults:
        profile = _load("achievements_faults", load_profile, s.faults, s.rules)
        faults = FaultInjector(profile, s.seed)
    log = previous.log if previous is not None else None
    if log is None or str(log.path or "") != str(s.log or ""):
        try:
            log = ValidationLog(s.log)
        except OSError as e:
            raise ConfigError(f"achievements_log: cannot open {s.log}: {e.strerror}") from None

    # Everything is valid: it replaces what was in force.
    recorder = previous.recorder if previous is not None else None
    if previous is not None and log is not previous.log:
        previous.log.close()
    if s.records:
        if recorder is None or recorder.cassette_dir != s.cassettes or recorder.backlog_limit != 2 * s.max_body:
            if previous is not None:
                previous.close_recorder()
            recorder = RecorderProcess(s.cassettes, on_error=lambda e: logger.warning(f"xblreplay: not recorded: {e}"),
                                       rules_dir=s.rules, backlog_limit=2 * s.max_body)
    elif previous is not None:
        previous.close_recorder()
        recorder = None
    if s.mode.compares:
        log.count_diffs()  # the summary gains its diff counts
    return Configuration(s, validator, replayer, Throttle(limits) if s.throttle else None, CallPatterns(limits),
                         faults, log, recorder, loaded_in, diff_rules)


def loaded_line(replayer: Replayer, seconds: float) -> str:
    """The start-up line saying what the cassettes gave."""
    infos = list(replayer.store.datasets())

    def n(count: int, what: str) -> str:
        return f"{count} {what}{'' if count == 1 else 's'}"

    return (f"xblreplay: loaded {n(replayer.files, 'file')}: {n(len(infos), 'dataset')}, "
            f"{n(sum(i.size for i in infos), 'achievement')}, {n(len(replayer.interactions), 'interaction')} "
            f"in {seconds:.2f} s")


def _load(option: str, fn, *args):
    try:
        return fn(*args)
    except Exception as e:
        raise ConfigError(f"{option}: {e}") from None
