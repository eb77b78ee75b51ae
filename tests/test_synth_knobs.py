"""xblreplay.synth: the knobs hold in what is written and in what replay serves from it: the
unlocked share, locales, Challenges with windows relative to --now, secret achievements,
contract-4 rarity, progress, V1 and V2 titles, and K as the size of each user's listing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from xblreplay import DEFAULT_RULES_DIR, synth
from xblreplay.contract import Validator
from xblreplay.replay import Replayer

NOW = datetime(2027, 2, 10, 12, 0, tzinfo=timezone.utc)
SPEC = dict(users=2, titles=40, achievements=3000, locales=("en-US", "fr-FR", "ja-JP"), unlocked=0.25,
            challenges=0.15, secret=0.06, v1_titles=0.2, seed=7, now="2027-02-10T12:00:00Z", form="yaml")
AUTH = "XBL3.0 x=synth-test;token"
VALIDATOR = Validator.from_rules(DEFAULT_RULES_DIR)


_LOADED: dict[Path, dict] = {}


def load(path: Path) -> dict:
    """A cassette as written (JSON form or block YAML), read without the proxy's loader."""
    if path not in _LOADED:
        text = path.read_text(encoding="utf-8")
        _LOADED[path] = (json.loads(text[text.find("\n{") + 1:]) if text.startswith("# xblreplay cassette")
                         else yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    return _LOADED[path]


def entries(doc: dict, shape: str | None = None) -> list[dict]:
    return [a for d in doc["datasets"] if shape in (None, d["shape"]) for t in d["titles"] for a in t["achievements"]]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text[:26] + "+00:00")  # 7 fractional digits: the 7th is always 0 here


@pytest.fixture(scope="module", autouse=True)
def parse_cache(tmp_path_factory):
    """Large block-YAML cassettes are kept parsed: here, not in the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XBLREPLAY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[synth.Spec, synth.Report, Path]:
    spec = synth.Spec(**SPEC)
    out = tmp_path_factory.mktemp("knobs") / "out"
    return spec, synth.generate(spec, out), out


def answer(replayer: Replayer, url: str, contract: str, language: str = "en-US") -> dict:
    check, got = replayer.handle("GET", url, {"authorization": AUTH, "x-xbl-contract-version": contract,
                                              "accept-language": language})
    assert got.status == 200, (got.status, got.reason)
    assert not [v for v in check.violations + list(got.violations) if v.severity == "error"]
    return got.body


def test_each_users_listing_holds_k_achievements_over_m_titles_in_both_shapes(made):
    spec, report, out = made
    assert len(report.v1_titles) == 8 and len(report.v2_titles) == 32  # 20 % of 40 titles are Xbox 360 titles
    for xuid in report.xuids:
        for locale in spec.locales:
            doc = load(out / str(xuid) / f"{locale}.yaml")
            assert [d["shape"] for d in doc["datasets"]] == ["V2", "V1"]
            titles = [t for d in doc["datasets"] for t in d["titles"]]
            assert len(titles) == 40 and all(t["achievements"] for t in titles)
            assert len(entries(doc)) == 3000
            assert all("scid" in t for t in doc["datasets"][0]["titles"])
    replayer = Replayer.from_dir(VALIDATOR, out)
    base = f"https://achievements.xboxlive.com/users/xuid({report.xuids[1]})/achievements?maxItems=1"
    totals = [answer(replayer, base, c)["pagingInfo"]["totalRecords"] for c in ("2", "1")]
    assert sum(totals) == 3000 and all(totals)


def test_the_unlocked_share_holds_per_user_and_every_unlock_is_before_now(made):
    spec, report, out = made
    for xuid in report.xuids:
        doc = load(out / str(xuid) / "en-US.yaml")
        unlocked = [a["unlocked"] for a in entries(doc) if "unlocked" in a]
        assert abs(len(unlocked) / 3000 - 0.25) <= 0.005
        assert all(when(t) <= NOW for t in unlocked)
    assert report.unlocked == sum(1 for x in report.xuids for loc in spec.locales
                                  for a in entries(load(out / str(x) / f"{loc}.yaml")) if "unlocked" in a)
    lots = synth.generate(synth.Spec(**{**SPEC, "unlocked": 0.8, "users": 1, "locales": ("en-US",)}),
                          out.parent / "lots")
    share = sum("unlocked" in a for a in entries(load(out.parent / "lots" / str(lots.xuids[0]) / "en-US.yaml")))
    assert abs(share / 3000 - 0.8) <= 0.005


def test_users_differ_and_the_catalogue_does_not(made):
    _, report, out = made
    first, second = (entries(load(out / str(x) / "en-US.yaml")) for x in report.xuids)
    assert [(a["id"], a["name"], a["gamerscore"]) for a in first] == [(a["id"], a["name"], a["gamerscore"]) for a in second]
    assert [a.get("unlocked") for a in first] != [a.get("unlocked") for a in second]


def test_every_locale_has_its_own_texts_and_replay_serves_them(made):
    spec, report, out = made
    docs = {loc: entries(load(out / str(report.xuids[0]) / f"{loc}.yaml")) for loc in spec.locales}
    assert [a["id"] for a in docs["fr-FR"]] == [a["id"] for a in docs["en-US"]]
    for a, b, c in zip(docs["en-US"], docs["fr-FR"], docs["ja-JP"]):
        assert len({a["name"], b["name"], c["name"]}) == 3
        assert a.get("unlocked") == b.get("unlocked") == c.get("unlocked")  # one user, translated
    assert any("é" in a["lockedDescription"] for a in docs["fr-FR"])
    assert all(not a["name"].isascii() for a in docs["ja-JP"])
    replayer = Replayer.from_dir(VALIDATOR, out)
    title = report.v2_titles[0]
    url = f"https://achievements.xboxlive.com/users/xuid({report.xuids[0]})/achievements?titleId={title}&maxItems=5"
    for locale, language in (("fr-FR", "fr-FR"), ("ja-JP", "ja-JP,en;q=0.5"), ("en-US", "de-DE,en-US;q=0.8")):
        body = answer(replayer, url, "2", language)
        doc = load(out / str(report.xuids[0]) / f"{locale}.yaml")
        written = next(t for t in doc["datasets"][0]["titles"] if t["id"] == title)["achievements"][:5]
        assert [a["name"] for a in body["achievements"]] == [a["name"] for a in written]


def test_challenges_have_windows_relative_to_now(made, tmp_path):
    spec, report, out = made
    doc = load(out / str(report.xuids[0]) / "en-US.yaml")
    v2 = entries(doc, "V2")
    challenges = [a for a in v2 if a.get("type") == "Challenge"]
    assert report.challenges == len(challenges) == round(0.15 * len(v2))
    assert not any(a.get("type") == "Challenge" for a in entries(doc, "V1"))
    windows = [(when(a["window"]["start"]), when(a["window"]["end"])) for a in challenges]
    assert all(start < end for start, end in windows)
    ending_next_week = [w for w in windows if w[0] <= NOW < w[1] <= NOW + timedelta(days=7)]
    assert len(ending_next_week) >= 0.2 * len(windows)
    assert any(end < NOW for _, end in windows) and any(start > NOW for start, _ in windows)
    assert any(start < NOW and end > NOW + timedelta(days=7) for start, end in windows)
    assert all(a["gamerscore"] == 0 for a in challenges)
    for a in challenges:
        if "unlocked" in a:  # inside its window, and not in the future
            assert when(a["window"]["start"]) <= when(a["unlocked"]) <= min(when(a["window"]["end"]), NOW)
    # Another --now moves every window with it, and nothing else about them.
    later = synth.Spec(**{**SPEC, "now": "2027-02-20T12:00:00Z"})
    synth.generate(later, tmp_path / "later")
    moved = [a for a in entries(load(tmp_path / "later" / str(report.xuids[0]) / "en-US.yaml"), "V2")
             if a.get("type") == "Challenge"]
    assert [(when(a["window"]["start"]) - timedelta(days=10), when(a["window"]["end"]) - timedelta(days=10))
            for a in moved] == windows
    # EndingSoon (with the proxy's clock at --now) puts the windows ending next week first.
    replayer = Replayer.from_dir(VALIDATOR, out, now=lambda: NOW)
    url = (f"https://achievements.xboxlive.com/users/xuid({report.xuids[0]})/achievements"
           f"?orderBy=EndingSoon&types=Challenge&maxItems=5")
    body = answer(replayer, url, "2")
    first = [datetime.fromisoformat(a["timeWindow"]["endDate"][:26] + "+00:00") for a in body["achievements"]]
    assert all(NOW < end <= NOW + timedelta(days=7) for end in first)


def test_secret_achievements_hide_what_to_do_while_locked(made):
    _, report, out = made
    doc = load(out / str(report.xuids[0]) / "en-US.yaml")
    secret = [a for a in entries(doc) if a.get("secret")]
    assert len(secret) == report.secret == round(0.06 * 3000)
    locked = [a for a in secret if "unlocked" not in a]
    unlocked = [a for a in secret if "unlocked" in a]
    assert locked and unlocked
    assert all(a["description"] == a["lockedDescription"] for a in locked)
    assert all(a["description"] != a["lockedDescription"] for a in unlocked)
    assert len({a["lockedDescription"] for a in secret}) == 1
    shown = {a["lockedDescription"] for a in entries(doc) if not a.get("secret")}
    assert locked[0]["lockedDescription"] not in shown


def test_rarity_is_served_to_contract_4_and_progress_to_every_v2_contract(made):
    _, report, out = made
    replayer = Replayer.from_dir(VALIDATOR, out)
    url = f"https://achievements.xboxlive.com/users/xuid({report.xuids[0]})/achievements?maxItems=400"
    strict = VALIDATOR.schema("AchievementsResponseV2")
    four, two = answer(replayer, url, "4"), answer(replayer, url, "2")
    assert list(strict.iter_errors(four)) == [] and list(strict.iter_errors(two)) == []
    assert all("rarity" in a for a in four["achievements"]) and not any("rarity" in a for a in two["achievements"])
    categories = {a["rarity"]["currentCategory"] for a in four["achievements"]}
    assert {"Rare", "Common"} <= categories
    assert all((a["rarity"]["currentPercentage"] < 10) == (a["rarity"]["currentCategory"] == "Rare")
               for a in four["achievements"] if a["rarity"]["currentCategory"] != "Unset")
    states = {a["progressState"] for a in two["achievements"]}
    assert states == {"Achieved", "InProgress", "NotStarted"}
    for a in two["achievements"]:
        req = a["progression"]["requirements"][0]
        if a["progressState"] == "InProgress":
            assert 0 < int(req["current"]) < int(req["target"])
        assert a["mediaAssets"][0]["url"].startswith(("https://images-eds-ssl.xboxlive.com/image?url=",
                                                      "http://images-eds.xboxlive.com/image?url="))
        assert a["rewards"][0]["type"] == "Gamerscore"
    v1 = answer(replayer, url, "3")
    assert list(VALIDATOR.schema("AchievementsResponseV1").iter_errors(v1)) == []
    assert all("rarity" in a for a in v1["achievements"])


def test_a_language_without_its_own_words_is_marked(tmp_path):
    report = synth.generate(synth.Spec(titles=2, achievements=20, locales=("en-US", "pl-PL")), tmp_path / "out")
    polish = entries(load(tmp_path / "out" / str(report.xuids[0]) / "pl-PL.yaml"))
    english = entries(load(tmp_path / "out" / str(report.xuids[0]) / "en-US.yaml"))
    assert [a["name"] for a in polish] == [a["name"] + " [pl-PL]" for a in english]


@pytest.mark.parametrize("knobs, message", [
    ({"titles": 5, "achievements": 4}, "achievements (4) must be at least titles (5)"),
    ({"challenges": -0.1}, "challenges must be a fraction"),
    ({"locales": ("en-US", "EN-us")}, "locales must differ"),
    ({"form": "xml"}, "form must be one of auto, yaml, json"),
    ({"seed": 1.5}, "seed must be an integer"),
])
def test_a_bad_spec_says_which_knob(knobs, message):
    with pytest.raises(synth.SpecError, match=None) as caught:
        synth.Spec(**knobs)
    assert message in str(caught.value)
