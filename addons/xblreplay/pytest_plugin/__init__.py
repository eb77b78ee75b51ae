"""The pytest plugin (entry point ``xblreplay``): the ``achievements_proxy`` fixture, the
``@pytest.mark.achievements(**options)`` marker, the ``achievements_config`` fixture, the
``--achievements-mode`` / ``--achievements-upstream`` flags and the
``achievements_fail_on_violations`` ini option (README, "Using it from pytest").

Nothing runs for a test that does not ask for ``achievements_proxy``: no fixture is autouse, and
the package's heavier modules are imported the first time one does.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from ..mode import MODES
from .config import MARK

FIXTURE = "achievements_proxy"
INI_FAIL = "achievements_fail_on_violations"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xblreplay", "Xbox Live Achievements proxy (xblreplay)")
    group.addoption("--achievements-mode", choices=MODES, default=None,
                    help="mode of the achievements_proxy fixture, over marks and achievements_config "
                         "(default: replay, which never reaches the service; diff compares the live "
                         "service with replay)")
    group.addoption("--achievements-upstream", metavar="URL", default=None,
                    help="where record, validate and diff modes forward achievements traffic (default: the service)")
    parser.addini(INI_FAIL, type="bool", default=False,
                  help="fail every test that used achievements_proxy and has findings, as assert_clean() does")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARK}(**options): options of the achievements_proxy fixture "
                            "(the proxy's achievements_* options without the prefix)")


@pytest.fixture
def achievements_config() -> dict[str, Any]:
    """Options for every achievements_proxy in scope (override it in a conftest.py or a module, at
    any scope); marks win over it."""
    return {}


@pytest.fixture(scope="session")
def _achievements_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from .servers import Pool

    pool = Pool(tmp_path_factory.mktemp("xblreplay"))
    yield pool
    pool.stop_all()


@pytest.fixture
def achievements_proxy(request: pytest.FixtureRequest, achievements_config: dict[str, Any],
                       _achievements_pool: Any) -> Any:
    """A running proxy for this test, reset to the cassettes as loaded (see handle.AchievementsProxy)."""
    from . import config as cfg
    from .handle import AchievementsProxy
    from .servers import ProxyError

    failure = None  # failed outside the except blocks: the report shows the reason, not a chain
    try:
        values = cfg.merged(achievements_config, request.node.iter_markers(name=MARK))
        opts = cfg.options(values, request.path, request.config.getoption("--achievements-mode"),
                           request.config.getoption("--achievements-upstream"))
        running = _achievements_pool.get(opts)
        start = running.control("rewind")["log_offset"]
    except (cfg.UsageError, ProxyError) as e:
        failure = str(e)
    if failure is not None:
        pytest.fail(f"achievements_proxy: {failure}", pytrace=False)
    return AchievementsProxy(running, opts, start)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" or not report.passed or FIXTURE not in getattr(item, "fixturenames", ()):
        return
    if not item.config.getini(INI_FAIL):
        return
    proxy = getattr(item, "funcargs", {}).get(FIXTURE)
    if proxy is None:
        return
    from .handle import report as worded

    found = proxy.findings()
    if found:  # the test itself fails (not an error at teardown), saying why
        report.outcome = "failed"
        report.longrepr = f"{worded(found)}\n({INI_FAIL} = true)"
