"""Options: the table and value policy of xblreplay.proxy.options, and the addon's hooks around them with
mitmproxy's taddons/tflow (the must-show cases run a real mitmdump: tests/test_e2e_options.py)."""

from __future__ import annotations

import asyncio
import functools
import io
import json
from typing import Optional

import pytest
from mitmproxy import exceptions, hooks, io as mio, optmanager, options as moptions
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow, tutils

from xblreplay.proxy import options as xopts
from xblreplay.mitm.addon import OUR_OPTIONS, Achievements
from proxyharness import AUTH, REPO, XUID

EXAMPLE = REPO / "cassettes" / "example"
LISTING = f"/users/xuid({XUID})/achievements?titleId=1829000002&maxItems=3"


def run_async(test):
    @functools.wraps(test)
    def run():
        asyncio.run(test())

    return run


def achievements_flow(path: str = LISTING):
    req = tutils.treq(host="achievements.xboxlive.com", port=443, path=path.encode())
    req.scheme = "https"
    req.headers.clear()
    req.headers["Host"] = "achievements.xboxlive.com"
    req.headers["Authorization"] = AUTH
    req.headers["x-xbl-contract-version"] = "2"
    return tflow.tflow(req=req, resp=False)


# --------------------------------------------------------------------------------------- table

def test_the_table_is_the_one_source_of_option_names():
    assert OUR_OPTIONS == xopts.NAMES == {o.name for o in xopts.OPTIONS}
    assert len(xopts.OPTIONS) == 14


def test_declared_options_are_the_table():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        for o in xopts.OPTIONS:
            declared = tctx.options._options[o.name]
            assert (declared.typespec, declared.default, declared.help) == (o.type, o.default, o.help)
            assert declared.choices == (list(o.choices) if o.choices else None)


@pytest.mark.parametrize("name, texts, value", [
    ("achievements_seed", ["7"], 7),
    ("achievements_seed", [], None),
    ("achievements_seed", [""], None),
    ("achievements_strict", [], True),
    ("achievements_strict", ["false"], False),
    ("achievements_check_responses", ["toggle"], False),
    ("achievements_mode", ["record"], "record"),
    ("achievements_upstream", [], None),
])
def test_set_texts_parse_as_mitmproxy_parses_them(name, texts, value):
    assert xopts.parse_text(name, texts) == value


@pytest.mark.parametrize("name, texts, message", [
    ("achievements_seed", ["abc"], "achievements_seed='abc' is not an integer"),
    ("achievements_strict", ["yes"], "achievements_strict='yes' is not a boolean: use true or false"),
    ("achievements_mode", [], "achievements_mode needs a value"),
    ("achievements_mode", ["record", "replay"], "achievements_mode is set 2 times"),
])
def test_bad_set_texts_are_one_line_naming_the_option(name, texts, message):
    with pytest.raises(xopts.ConfigError, match="^" + message.replace("(", r"\(")):
        xopts.parse_text(name, texts)


@pytest.mark.parametrize("name, value", [
    ("achievements_seed", "abc"), ("achievements_seed", True), ("achievements_strict", "true"),
    ("achievements_mode", None), ("achievements_log", 3),
])
def test_typed_values_of_the_wrong_type_are_refused(name, value):
    with pytest.raises(xopts.ConfigError, match=name):
        xopts.check_type(name, value)


def defaults(**changes):
    values = {o.name: o.default for o in xopts.OPTIONS}
    values.update(changes)
    return values


@pytest.mark.parametrize("changes, message", [
    ({"achievements_mode": "sideways"}, "achievements_mode='sideways' is not a mode"),
    ({"achievements_upstream": "ftp://x"}, "achievements_upstream must be an http(s) base URL"),
    ({"achievements_upstream": "http://x:port"}, "achievements_upstream must be an http(s) base URL"),
    ({"achievements_now": "soon"}, "achievements_now='soon' is not an ISO time"),
    ({"achievements_cassettes": ""}, "achievements_cassettes must not be empty"),
])
def test_settings_refuse_bad_values_naming_the_option(changes, message):
    with pytest.raises(xopts.ConfigError) as err:
        xopts.settings(defaults(**changes))
    assert str(err.value).startswith(message)


def test_settings_of_good_values():
    s = xopts.settings(defaults(achievements_mode="record", achievements_upstream="http://127.0.0.1:9/stage/",
                                achievements_now="2026-11-27T12:00:00Z", achievements_seed=3))
    assert s.records and not s.replays
    assert s.upstream == ("http", "127.0.0.1", 9, "/stage")
    assert s.now.isoformat() == "2026-11-27T12:00:00+00:00" and s.seed == 3


@pytest.mark.parametrize("name, line", [
    ("achievements_modee", "unknown option achievements_modee; did you mean achievements_mode?"),
    ("achievement_faults", "unknown option achievement_faults; did you mean achievements_faults?"),
    ("stream_large_bodie", "unknown option stream_large_bodie; did you mean stream_large_bodies?"),
    ("zzz", "unknown option zzz"),
])
def test_unknown_names_suggest_the_closest_option(name, line):
    assert xopts.unknown_option(name, ["stream_large_bodies", "mode"]) == line


def test_help_lists_every_option_with_its_default():
    text = xopts.help_text()
    for o in xopts.OPTIONS:
        assert f"--set {o.name}=" in text
    assert "Default: replay." in text and "Default: unset." in text and "Default: true." in text


# ------------------------------------------------------------------- mitmproxy's own behaviour

def test_mitmproxy_drops_a_scripts_deferred_options_when_one_does_not_parse():
    """The cause of achievements_seed=abc failing open: mitmproxy keeps a `--set` for an option
    not declared yet, and parses it right after the script's load(); a bad one raises there
    (in a task nobody awaits), and none of the script's values are applied."""
    opts = optmanager.OptManager()
    opts.set("achievements_seed=abc", "achievements_mode=record", defer=True)
    opts.add_option("achievements_seed", Optional[int], None, "seed")
    opts.add_option("achievements_mode", str, "replay", "mode")
    with pytest.raises(exceptions.OptionsError, match="Not an integer"):
        opts.process_deferred()
    assert opts.achievements_mode == "replay"  # the good value is lost as well


# ----------------------------------------------------------------------------- the addon, load

def startup_options(*specs: str) -> moptions.Options:
    opts = moptions.Options()
    opts.set(*specs, defer=True)
    return opts


@run_async
async def test_a_bad_startup_value_is_an_error_and_the_good_ones_still_apply():
    addon = Achievements()
    opts = startup_options("achievements_seed=abc", "achievements_mode=validate", "achievements_strict")
    with taddons.context(proxyserver.Proxyserver(), addon, options=opts) as tctx:
        assert not set(tctx.options.deferred) & xopts.NAMES  # nothing left for mitmproxy to trip on
        assert tctx.options.achievements_mode == "validate" and tctx.options.achievements_strict is True
        assert tctx.options.connection_strategy == "lazy"  # before any configuration
        tctx.master.addons.invoke_addon_sync(addon, hooks.ConfigureHook(tctx.options.keys()))  # as a script load does
        assert addon.broken == "achievements_seed='abc' is not an integer"
        f = achievements_flow()
        await addon.request(f)
        assert f.response.status_code == 502
        assert f.response.headers["X-Xblreplay-Reason"] == "xblreplay misconfigured: achievements_seed='abc' is not an integer"
        assert f.request.host == "achievements.xboxlive.com"


def test_a_misspelt_startup_name_close_to_ours_is_an_error_naming_the_option():
    addon = Achievements()
    opts = startup_options("achievements_modee=record", "web_columns=x")
    with taddons.context(addon, options=opts) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        assert addon.broken == "unknown option achievements_modee; did you mean achievements_mode?"
        assert "web_columns" not in addon.option_errors  # not ours: another addon may declare it


def test_typed_startup_values_from_mitmproxys_config_file_are_checked():
    addon = Achievements()
    opts = moptions.Options()
    opts.update_defer(achievements_seed="abc", achievements_throttle=True)  # as config.yaml does
    with taddons.context(addon, options=opts) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        assert addon.broken == "achievements_seed='abc' is not an integer"
        assert tctx.options.achievements_throttle is True


# -------------------------------------------------------------------------- the addon, run time

@run_async
async def test_without_a_configuration_every_request_for_the_host_is_502():
    addon = Achievements()
    with taddons.context(addon):
        f = achievements_flow()  # configure never ran
        await addon.request(f)
        assert f.response.status_code == 502
        assert "no configuration loaded" in f.response.headers["X-Xblreplay-Reason"]
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_mode="validate", achievements_rules="/nonexistent")
        f = achievements_flow()
        await addon.request(f)
        assert f.response.status_code == 502 and "rules file not found" in f.response.headers["X-Xblreplay-Reason"]


@pytest.mark.parametrize("spec", [
    "achievements_seed=abc", "achievements_strict=maybe", "achievements_mode=sideways",
    "achievements_upstream=ftp://x", "achievements_faults=no-such-profile", "achievements_rules=/nonexistent",
])
def test_a_bad_value_at_run_time_is_refused_and_the_configuration_stays(spec):
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        addon.running()
        in_force = (addon.settings, addon.validator, addon.replayer)
        with pytest.raises(exceptions.OptionsError):
            tctx.options.set(spec)  # what `:set` does
        assert (addon.settings, addon.validator, addon.replayer) == in_force
        assert addon.broken is None and tctx.options.achievements_mode == "replay"
        # A good change still applies.
        tctx.options.set("achievements_strict_coverage=true")
        assert addon.settings.strict_coverage is True


def test_a_refused_change_while_unconfigured_keeps_the_502_reason():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_rules="/nonexistent")
        addon.running()
        reason = addon.broken
        with pytest.raises(exceptions.OptionsError):
            tctx.options.set("achievements_mode=sideways")
        assert addon.broken == reason and addon.validator is None
        tctx.options.set("achievements_rules=" + str(REPO / "rules"), "achievements_cassettes=" + str(EXAMPLE))
        assert addon.broken is None and addon.validator is not None


def test_reload_command_refuses_a_broken_directory_and_keeps_what_is_in_force(tmp_path):
    cassettes = tmp_path / "c"
    cassettes.mkdir()
    (cassettes / "a.yaml").write_text((EXAMPLE / "example.yaml").read_text())
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(cassettes))
        addon.running()
        replayer = addon.replayer
        (cassettes / "b.yaml").write_text("xblreplay: 9\n")
        with pytest.raises(exceptions.CommandError, match="b.yaml"):
            addon.reload()
        assert addon.replayer is replayer and addon.broken is None


# ------------------------------------------------------------------------ per-flow state, -w

@run_async
async def test_flows_keep_no_addon_objects_and_serialise():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        f = achievements_flow()
        await tctx.cycle(addon, f)
        assert f.response.status_code == 200
        assert not addon._flows and "xblreplay" not in f.metadata
        buf = io.BytesIO()
        mio.FlowWriter(buf).add(f)
        (back,) = mio.FlowReader(io.BytesIO(buf.getvalue())).stream()
        assert back.response.content == f.response.content


@run_async
async def test_a_forwarded_flow_shows_the_clients_request_once_answered():
    addon = Achievements()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, achievements_mode="validate", achievements_upstream="http://127.0.0.1:9/stage")
        f = achievements_flow()
        await addon.request(f)
        assert (f.request.scheme, f.request.host, f.request.port) == ("http", "127.0.0.1", 9)
        assert f.request.path.startswith("/stage/users/")
        f.response = tutils.tresp()
        addon.response(f)
        assert f.request.pretty_url == "https://achievements.xboxlive.com" + LISTING
        assert f.request.host == "achievements.xboxlive.com" and f.request.port == 443
        assert f.metadata["xblreplay_upstream"] == "http://127.0.0.1:9/stage"
        assert not addon._flows


def test_xblreplay_run_help_lists_our_options_then_hands_the_rest_to_mitmdump():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "xblreplay.cli", "run", "--help"], capture_output=True,
                          text=True, timeout=60, cwd=REPO / "addons", stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    last = 0
    for o in xopts.OPTIONS:
        at = text.index(f"--set {o.name}=", last)  # in table order
        end = text.find("\n  --set", at + 1)
        entry = text[at:end if end != -1 else None]
        assert f"Default: {o.shown_default()}." in " ".join(entry.split()), entry
        last = at
    assert "goes to mitmdump" in text[last:]


def test_connection_strategy_is_held_lazy_at_run_time():
    addon = Achievements()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        addon.running()
        tctx.options.set("connection_strategy=eager")
        assert tctx.options.connection_strategy == "lazy"


def test_a_startup_error_goes_only_when_its_option_is_set_again():
    addon = Achievements()
    opts = startup_options("achievements_seed=abc")
    with taddons.context(addon, options=opts) as tctx:
        tctx.configure(addon, achievements_cassettes=str(EXAMPLE))
        assert addon.validator is None and "achievements_seed" in addon.broken
        addon.running()
        with pytest.raises(exceptions.OptionsError, match="achievements_seed"):
            tctx.options.set("achievements_strict_coverage=true")  # another option: still no configuration
        assert addon.validator is None and "achievements_seed" in addon.broken
        with pytest.raises(exceptions.OptionsError):  # the seed, with something else bad: refused
            tctx.options.update(achievements_seed=3, achievements_mode="sideways")
        assert addon.validator is None and "achievements_seed" in addon.broken
        tctx.options.set("achievements_seed=3")
        assert addon.broken is None and addon.faults is None and addon.validator is not None


def test_an_internal_error_is_logged_as_the_proxys_answer_not_the_services(tmp_path):
    async def run():
        addon = Achievements()
        with taddons.context(addon) as tctx:
            tctx.configure(addon, achievements_cassettes=str(EXAMPLE), achievements_log=str(tmp_path / "log.jsonl"))

            def broken(*args, **kwargs):
                raise KeyError("boom")

            addon.replayer.answer = broken
            f = achievements_flow()
            await addon.request(f)
            assert f.response.status_code == 500
            addon.response(f)
            addon.log.close()

    asyncio.run(run())
    entries = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    (entry,) = [e for e in entries if "summary" not in e]
    assert entry["source"] == "error" and entry["status"] == 500
