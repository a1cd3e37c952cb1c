"""Settings: the table, units, precedence (default < file < environment), validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.config import SETTINGS, load_settings, shipped_seeds
from ingest.errors import ConfigError
from ingest.units import format_duration, parse_duration, parse_size
from tests.conftest import write_config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20s", 20),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        (45, 45),
        ("90", 90),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 parsecs", "-5m", 0, True, "", "m"])
def test_bad_durations_say_what_is_accepted(bad: object) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        parse_duration(bad)


def test_sizes_and_duration_formatting() -> None:
    assert parse_size("16MiB") == 16 * 1024 * 1024
    assert parse_size("2MB") == 2_000_000
    assert parse_size(512) == 512
    assert format_duration(1800) == "30m"
    assert format_duration(5400) == "90m"
    with pytest.raises(ValueError, match="not a size"):
        parse_size("big")


def test_built_in_default_has_only_the_shipped_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert [s.url for s in settings.sources] == [str(shipped_seeds())]
    assert (shipped_seeds() / "000_dd9e6ee67f5cdc93.txt").is_file()
    assert settings.fetch.max_body == 16 * 1024 * 1024
    assert settings.fetch.per_host == 2
    assert settings.defaults.interval == 1800


def test_ingest_toml_in_the_working_directory_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, [{"url": "feeds/a.xml"}], fetch={"timeout": "5s"})
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.fetch.timeout == 5
    assert [s.url for s in settings.sources] == [str(tmp_path / "feeds" / "a.xml")]


def test_environment_overrides_the_file_and_origins_say_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, fetch={"timeout": "5s", "per_host": 3})
    settings = load_settings(config, env={"INGEST_FETCH_TIMEOUT": "7s", "INGEST_DB": "ignored"})
    assert settings.fetch.timeout == 7
    assert settings.fetch.per_host == 3
    assert settings.origins["fetch.timeout"] == "env INGEST_FETCH_TIMEOUT"
    assert settings.origins["fetch.per_host"] == str(config)
    assert settings.origins["fetch.concurrency"] == "default"


def test_sources_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(tmp_path, [{"url": "https://a.example/f"}]),
        env={"INGEST_SOURCES": "https://b.example/f, https://c.example/f"},
    )
    assert [s.url for s in settings.sources] == ["https://b.example/f", "https://c.example/f"]


def test_every_setting_has_an_environment_variable() -> None:
    names = [s.env for s in SETTINGS]
    assert "INGEST_FETCH_TIMEOUT" in names
    assert "INGEST_SERVE_PORT" in names
    assert len(set(names)) == len(names)


def test_source_options_are_validated_per_key(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        [
            {
                "url": "https://x.example/f",
                "categories": "新媒体",
                "interval": "10m",
                "max_body": "1MiB",
            }
        ],
    )
    (spec,) = load_settings(config, env={}).sources
    assert spec.categories == ("新媒体",)
    assert spec.interval_s == 600
    assert spec.max_body == 1024 * 1024
    bad = write_config(tmp_path, [{"url": "https://x.example/f", "comments": "maybe"}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.comments: 'maybe' is not a boolean"):
        load_settings(bad, env={})


def test_floor_above_ceiling_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, schedule={"min_interval": "2d", "max_interval": "1d"})
    with pytest.raises(ConfigError, match="min_interval"):
        load_settings(config, env={})


def test_websub_is_off_until_a_callback_url_is_set(tmp_path: Path) -> None:
    assert not load_settings(write_config(tmp_path), env={}).websub.enabled
    env = {"INGEST_WEBSUB_CALLBACK_URL": "https://public.example/websub/"}
    websub = load_settings(write_config(tmp_path), env=env).websub
    assert (websub.enabled, websub.callback_url, websub.lease) == (
        True,
        "https://public.example/websub",
        10 * 86400,
    )


@pytest.mark.parametrize(
    ("websub", "message"),
    [
        (
            {"callback_url": "ftp://x.example/cb"},
            r"\[websub\] callback_url: .* not an http\(s\) URL",
        ),
        ({"callback_url": "https://x.example/cb?k=1"}, r"callback_url: .* has a query"),
        ({"callback_url": 5}, r"callback_url: 5 is not a URL"),
        (
            {"callback_url": "https://x.example/cb", "lease": "10m"},
            r"\[websub\] lease: 10m is outside",
        ),
        ({"callback_url": "https://x.example/cb", "lease": "soon"}, r"\[websub\] lease: .*soon"),
    ],
)
def test_bad_websub_settings_name_the_key_and_the_reason(
    tmp_path: Path, websub: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, websub=websub), env={})


def test_host_rules_from_the_file_match_hosts_and_fall_back_to_fetch(tmp_path: Path) -> None:
    config = tmp_path / "ingest.toml"
    config.write_text(
        '[fetch]\nper_host = 2\ntimeout = "20s"\n'
        '[[fetch.hosts]]\nmatch = "RSSHub.Example.org"\nper_host = 8\ntimeout = "1m"\n'
        '[[fetch.hosts]]\nmatch = "*.example.org"\nper_host = 4\n',
        encoding="utf-8",
    )
    fetch = load_settings(config, env={}).fetch

    assert (fetch.per_host_for("rsshub.example.org"), fetch.timeout_for("rsshub.example.org")) == (
        8,
        60.0,
    )
    assert (fetch.per_host_for("a.b.example.org"), fetch.timeout_for("a.b.example.org")) == (
        4,
        20.0,
    )
    assert fetch.per_host_for("example.org") == 2  # the domain itself is not under *.example.org
    assert fetch.per_host_for("other.example") == 2


def test_host_rules_from_the_environment_set_per_host(tmp_path: Path) -> None:
    env = {"INGEST_FETCH_HOSTS": "rsshub.example.org=8, *.example.com=3"}
    fetch = load_settings(write_config(tmp_path), env=env).fetch

    assert [(rule.match, rule.per_host) for rule in fetch.hosts] == [
        ("rsshub.example.org", 8),
        ("*.example.com", 3),
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"per_host": 8}], r"\[fetch\] hosts: rule 1: has no match"),
        ([{"match": "a.example", "per_hots": 8}], r"rule 1: unknown key 'per_hots'; known: match"),
        (
            [{"match": "a.example"}, {"match": "b.example", "per_host": 0}],
            r"rule 2: 0 is not a whole number above zero",
        ),
        ([{"match": "https://a.example/", "per_host": 8}], r"rule 1: .* is not a host name"),
        ([{"match": "a.example", "timeout": "soon"}], r"rule 1: .*soon"),
        ("rsshub.example.org", r"\[fetch\] hosts: 'rsshub.example.org' is not host=per_host"),
    ],
)
def test_bad_host_rules_name_the_rule_and_the_reason(
    tmp_path: Path, rules: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, fetch={"hosts": rules}), env={})


def test_the_readmes_config_example_is_valid_and_opens_up_rsshub(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = next(
        block for block in re.findall(r"```toml\n(.*?)```", readme, re.DOTALL) if "[fetch]" in block
    )
    config = tmp_path / "ingest.toml"
    config.write_text(example, encoding="utf-8")

    fetch = load_settings(config, env={}).fetch

    assert (fetch.per_host_for("rsshub.lan"), fetch.timeout_for("rsshub.lan")) == (8, 60.0)
    assert (fetch.per_host_for("example.org"), fetch.timeout_for("example.org")) == (2, 20.0)


def test_the_readmes_websub_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    example = next(
        block
        for block in re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
        if "[websub]" in block
    )
    config = tmp_path / "ingest.toml"
    config.write_text(example, encoding="utf-8")
    websub = load_settings(config, env={}).websub
    assert (websub.callback_url, websub.lease) == ("https://feeds.example/websub", 10 * 86400)
