"""Settings: one table of every key, read once from defaults, the config file and ``INGEST_*``.

Precedence, lowest first: the built-in default, the config file (``ingest.toml``), the
environment (``INGEST_FETCH_TIMEOUT`` for ``[fetch] timeout``). The result is one frozen
``Settings`` object passed down to whoever needs it; nothing else reads the environment or the
file. Any unknown or invalid key is refused with the key, where it came from, and the reason.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ingest import __version__
from ingest.errors import ConfigError
from ingest.filters import RuleError, parse_rules, rule_lines
from ingest.types import DEFAULT_MAX_BODY, Change, SourceSpec
from ingest.units import format_duration, parse_duration, parse_size
from ingest.urls import is_http_url, source_url

CONFIG_FILE_NAME = "ingest.toml"
ENV_PREFIX = "INGEST_"
USER_AGENT = f"feed-ingest/{__version__} (+https://github.com/feed-ingest/feed-ingest)"
_CLI_ENV = frozenset({"INGEST_DB", "INGEST_CONFIG"})  # read by the CLI itself, not settings


# --- value parsers: each takes TOML values and environment strings alike -----------------------


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean; use true or false")


def _positive_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    try:
        number = int(value) if isinstance(value, int | str) else None
    except ValueError:
        number = None
    if number is None or number <= 0:
        raise ValueError(f"{value!r} is not a whole number above zero")
    return number


def _port(value: object) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise ValueError(f"{number} is not a TCP port (1-65535)")
    return number


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a non-empty string")
    return value.strip()


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{value!r} is not a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def _choice(*options: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if isinstance(value, str) and value.strip().lower() in options:
            return value.strip().lower()
        raise ValueError(f"{value!r} is not one of: {', '.join(options)}")

    return parse


@dataclass(frozen=True, slots=True)
class HostRule:
    """``[[fetch.hosts]]``: settings for the hosts ``match`` names, in place of ``[fetch]``'s.

    ``match`` is a host name (``rsshub.example.org``), an address, or ``*.example.org`` for every
    host under that domain (the domain itself not included). The first rule that matches a host
    applies; a setting a rule leaves out (None) is ``[fetch]``'s.
    """

    match: str
    per_host: int | None = None
    timeout: float | None = None

    def matches(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if self.match.startswith("*."):
            return host.endswith(self.match[1:])
        return host == self.match


_HOST_RULE_KEYS = ("match", "per_host", "timeout")


def _host_rules(value: object) -> tuple[HostRule, ...]:
    """``[[fetch.hosts]]`` tables, or, from the environment, ``"host=per_host, ..."``."""
    if isinstance(value, str):
        tables: list[object] = []
        for part in (p.strip() for p in value.split(",")):
            match, equals, per_host = part.partition("=")
            if not equals:
                raise ValueError(f"{part!r} is not host=per_host (e.g. rsshub.example.org=8)")
            tables.append({"match": match, "per_host": per_host})
        value = tables
    if not isinstance(value, list | tuple):
        raise ValueError('must be an array of tables: [[fetch.hosts]] with match = "host"')
    return tuple(_host_rule(index, table) for index, table in enumerate(value))


def _host_rule(index: int, table: object) -> HostRule:
    where = f"rule {index + 1}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table with a match key")
    unknown = sorted(set(table) - set(_HOST_RULE_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(_HOST_RULE_KEYS)}"
        )
    if "match" not in table:
        raise ValueError(f"{where}: has no match (a host name, or *.domain)")
    try:
        match = _text(table["match"]).lower().rstrip(".")
        bare = match.removeprefix("*.")
        if not bare or any(char in bare for char in "*/:@ ") or bare.startswith("."):
            raise ValueError(f"{table['match']!r} is not a host name, an address or *.domain")
        per_host = table.get("per_host")
        timeout = table.get("timeout")
        return HostRule(
            match=match,
            per_host=None if per_host is None else _positive_int(per_host),
            timeout=None if timeout is None else parse_duration(timeout),
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class HookSpec:
    """``[[hooks]]``: a program or a URL told about new or updated posts (``ingest.hooks``).

    Exactly one of ``exec`` (a command, given the post as JSON on stdin) and ``webhook`` (a URL
    the JSON is POSTed to, signed with ``secret`` when there is one) is set. ``categories``
    (case-folded) and ``sources`` (ids, canonical URLs or paths) narrow which posts it wants;
    empty: every post.
    """

    name: str
    on: frozenset[Change]
    exec: tuple[str, ...] = ()
    webhook: str | None = None
    secret: str | None = None
    timeout: float = 30.0
    categories: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    folder: Path | None = None
    """Where ``exec`` runs: the config file's folder, so relative paths in it mean what they
    mean for ``[[sources]]``."""

    def wants(self, event: Change, categories: Iterable[str], source_id: int, url: str) -> bool:
        """Whether ``event`` of a post with ``categories``, stored from source ``source_id``
        at ``url``, is for this hook."""
        if event not in self.on:
            return False
        if self.sources and str(source_id) not in self.sources and url not in self.sources:
            return False
        return not self.categories or any(c.casefold() in self.categories for c in categories)


_HOOK_KEYS = ("name", "on", "exec", "webhook", "secret", "timeout", "categories", "sources")
_HOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOOK_EVENTS = (Change.NEW, Change.UPDATED)


def _file_hooks(raw: object, where: str, base: Path) -> tuple[HookSpec, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: hooks", "must be an array of tables: [[hooks]]")
    hooks = tuple(
        _hook_spec(table, f"{where}: hooks[{index}]", base) for index, table in enumerate(raw)
    )
    first: dict[str, int] = {}
    for index, hook in enumerate(hooks):
        if hook.name in first:
            raise ConfigError(
                f"{where}: hooks[{index}].name",
                f"{hook.name!r} is already the name of hooks[{first[hook.name]}]; names "
                "identify deliveries, so each hook needs its own",
            )
        first[hook.name] = index
    return hooks


def _hook_spec(table: object, where: str, base: Path) -> HookSpec:
    if not isinstance(table, dict):
        raise ConfigError(where, "must be a table with a name, on, and exec or webhook")
    unknown = sorted(set(table) - set(_HOOK_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key; known: {', '.join(_HOOK_KEYS)}")
    for key in ("name", "on"):
        if key not in table:
            raise ConfigError(where, f"has no {key}")
    if ("exec" in table) == ("webhook" in table):
        raise ConfigError(
            where,
            'needs exactly one of exec (a command: exec = ["python3", "notify.py"]) and '
            'webhook (a URL: webhook = "https://chat.example.org/hook")',
        )
    if "secret" in table and "exec" in table:
        raise ConfigError(
            f"{where}.secret", "signs webhook bodies; an exec hook is handed the JSON directly"
        )

    def pick(key: str, parse: Callable[[object], Any], default: Any = None) -> Any:
        if key not in table:
            return default
        try:
            return parse(table[key])
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}", str(exc)) from exc

    return HookSpec(
        name=pick("name", _hook_name),
        on=pick("on", _hook_events),
        exec=pick("exec", _command, ()),
        webhook=pick("webhook", _webhook_url),
        secret=pick("secret", _text),
        timeout=pick("timeout", parse_duration, 30.0),
        categories=frozenset(c.casefold() for c in pick("categories", _categories, ())),
        sources=pick("sources", lambda value: _hook_sources(value, base), frozenset()),
        folder=base,
    )


def _hook_name(value: object) -> str:
    if not isinstance(value, str) or not _HOOK_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a hook name: letters, digits, '_', '.' and '-', at most 64, "
            "starting with a letter or digit"
        )
    return value


def _hook_events(value: object) -> frozenset[Change]:
    names = [value] if isinstance(value, str) else value
    known = ", ".join(event.value for event in _HOOK_EVENTS)
    if not isinstance(names, list) or not names:
        raise ValueError(f'{value!r} is not a list of events; use e.g. ["new", "updated"]')
    events = set()
    for name in names:
        if name not in _HOOK_EVENTS:
            raise ValueError(f"{name!r} is not an event; known: {known}")
        events.add(Change(name))
    return frozenset(events)


def _command(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(part, str) and part for part in value)
    ):
        raise ValueError(
            f"{value!r} is not a command; give the program and its arguments as a list, e.g. "
            '["python3", "notify.py"] (no shell is involved)'
        )
    return tuple(value)


def _webhook_url(value: object) -> str:
    url = _text(value)
    if not is_http_url(url):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


def _hook_sources(value: object, base: Path) -> frozenset[str]:
    """Source ids (as text) and canonical URLs or paths, as ``[[sources]]`` stores them."""
    items = value if isinstance(value, list) else [value]
    found = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            found.add(str(item))
        elif isinstance(item, str) and item.strip().isdigit():
            found.add(str(int(item)))
        elif isinstance(item, str) and item.strip():
            found.add(canonical_source_url(item.strip(), base))
        else:
            raise ValueError(f"{item!r} is not a source id, URL or path")
    return frozenset(found)


def _callback_url(value: object) -> str:
    """``[websub] callback_url``: empty (WebSub off), or the public http(s) URL the daemon's
    ``/websub/`` path is reachable at; each subscription's callback is it plus ``/<key>``."""
    if not isinstance(value, str):
        raise ValueError(f'{value!r} is not a URL; use the public https URL of /websub/, or ""')
    url = value.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if not is_http_url(url) or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL a hub can reach")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"{url!r} has a query, a fragment or credentials; give the plain URL the hub is to "
            "call (each subscription adds /<key> to it)"
        )
    return url.rstrip("/")


WEBSUB_LEASE_BOUNDS = (3600.0, 365 * 86400.0)
"""The lease ``[websub] lease`` may ask a hub for: an hour to a year (hubs grant what they
like within that; renewing a shorter one would be mostly renewing)."""


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One key: ``section.name`` in the file, ``INGEST_SECTION_NAME`` in the environment."""

    key: str
    default: Any
    parse: Callable[[object], Any]
    doc: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "_").upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("defaults.interval", 1800.0, parse_duration, "poll interval of sources without one"),
    Setting("defaults.comments", False, _boolean, "the posts' `comments` value"),
    Setting("fetch.timeout", 20.0, parse_duration, "total time allowed for one fetch"),
    Setting("fetch.connect_timeout", 10.0, parse_duration, "time allowed to connect"),
    Setting("fetch.read_timeout", 15.0, parse_duration, "longest wait between two reads"),
    Setting("fetch.max_body", DEFAULT_MAX_BODY, parse_size, "largest response, decompressed"),
    Setting("fetch.concurrency", 32, _positive_int, "fetches in flight at once"),
    Setting("fetch.per_host", 2, _positive_int, "fetches in flight to one host"),
    Setting("fetch.hosts", (), _host_rules, "per-host rules: [[fetch.hosts]]"),
    Setting("fetch.allow_private_networks", False, _boolean, "fetch private/loopback addresses"),
    Setting("fetch.allow_hosts", (), _string_list, "hosts fetched even when private"),
    Setting("fetch.user_agent", USER_AGENT, _text, "User-Agent header"),
    Setting("schedule.min_interval", 300.0, parse_duration, "never poll a source more often"),
    Setting("schedule.max_interval", 86400.0, parse_duration, "never poll a source less often"),
    Setting("schedule.backoff_cap", 86400.0, parse_duration, "longest wait after failures"),
    Setting("schedule.max_retry_after", 7 * 86400.0, parse_duration, "cap on Retry-After"),
    Setting("schedule.lease", 60.0, parse_duration, "a claim on a source, unless renewed"),
    Setting("serve.host", "127.0.0.1", _text, "address of /healthz, /metrics and /feeds/"),
    Setting("serve.port", 8080, _port, "port of /healthz, /metrics and /feeds/"),
    Setting("serve.tick", 15.0, parse_duration, "how often the daemon looks for due sources"),
    Setting("serve.grace", 8.0, parse_duration, "time in-flight sources get on a signal"),
    Setting("serve.feeds", True, _boolean, "serve the merged feeds at /feeds/"),
    Setting("filters.keep", (), rule_lines, "store only entries one of these matches"),
    Setting("filters.block", (), rule_lines, "never store entries one of these matches"),
    Setting("delivery.concurrency", 8, _positive_int, "hook deliveries in flight at once"),
    Setting("delivery.per_hook", 2, _positive_int, "deliveries in flight to one hook"),
    Setting("delivery.max_attempts", 10, _positive_int, "attempts before a delivery is given up"),
    Setting("delivery.backoff", 30.0, parse_duration, "wait before the first retry, doubled"),
    Setting("delivery.backoff_cap", 3600.0, parse_duration, "longest wait between attempts"),
    Setting("delivery.run_budget", 30.0, parse_duration, "time `ingest run` delivers at its end"),
    Setting("websub.callback_url", "", _callback_url, "public URL of /websub/; empty: no push"),
    Setting("websub.lease", 10 * 86400.0, parse_duration, "subscription lease asked of hubs"),
    Setting("log.level", "info", _choice("debug", "info", "warning", "error"), "log level"),
    Setting("log.format", "auto", _choice("auto", "console", "json"), "auto: console on a tty"),
)
_BY_KEY = {setting.key: setting for setting in SETTINGS}
_BY_ENV = {setting.env: setting for setting in SETTINGS}
_SOURCE_KEYS = frozenset(
    {"url", "name", "categories", "interval", "comments", "max_body", "keep", "block"}
)


@dataclass(frozen=True, slots=True)
class Defaults:
    interval: float
    comments: bool


@dataclass(frozen=True, slots=True)
class FetchSettings:
    timeout: float
    connect_timeout: float
    read_timeout: float
    max_body: int
    concurrency: int
    per_host: int
    hosts: tuple[HostRule, ...]
    allow_private_networks: bool
    allow_hosts: tuple[str, ...]
    user_agent: str

    def rule_for(self, host: str) -> HostRule | None:
        """The first ``[[fetch.hosts]]`` rule for ``host``, if any."""
        return next((rule for rule in self.hosts if rule.matches(host)), None)

    def per_host_for(self, host: str) -> int:
        rule = self.rule_for(host)
        return rule.per_host if rule and rule.per_host else self.per_host

    def timeout_for(self, host: str) -> float:
        rule = self.rule_for(host)
        return rule.timeout if rule and rule.timeout else self.timeout


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    min_interval: float
    max_interval: float
    backoff_cap: float
    max_retry_after: float
    lease: float


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str
    port: int
    tick: float
    grace: float
    feeds: bool


@dataclass(frozen=True, slots=True)
class FilterSettings:
    """``[filters]``: keep and block rules for every source (``ingest.filters``), as written."""

    keep: tuple[str, ...]
    block: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """How hook deliveries are run (``[delivery]``; the hooks themselves are ``[[hooks]]``)."""

    concurrency: int
    per_hook: int
    max_attempts: int
    backoff: float
    backoff_cap: float
    run_budget: float


@dataclass(frozen=True, slots=True)
class WebSubSettings:
    """``[websub]``: push subscriptions (``ingest serve`` only); off while ``callback_url`` is
    empty."""

    callback_url: str
    lease: float

    @property
    def enabled(self) -> bool:
        return bool(self.callback_url)


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str
    format: str


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings; ``origins`` tells where each key's value came from."""

    defaults: Defaults
    fetch: FetchSettings
    schedule: ScheduleSettings
    serve: ServeSettings
    filters: FilterSettings
    delivery: DeliverySettings
    websub: WebSubSettings
    log: LogSettings
    sources: tuple[SourceSpec, ...]
    origins: Mapping[str, str]
    config_path: Path | None
    hooks: tuple[HookSpec, ...] = ()

    def value(self, key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(self, section), name)

    def interval_of(self, spec: SourceSpec) -> float:
        return float(spec.interval_s) if spec.interval_s else self.defaults.interval


_SECTIONS: dict[str, type] = {
    "defaults": Defaults,
    "fetch": FetchSettings,
    "schedule": ScheduleSettings,
    "serve": ServeSettings,
    "filters": FilterSettings,
    "delivery": DeliverySettings,
    "websub": WebSubSettings,
    "log": LogSettings,
}
_LISTS = ("sources", "hooks")
"""Arrays of tables, beside the sections: ``[[sources]]`` and ``[[hooks]]``."""


def display_value(setting: Setting, value: Any) -> Any:
    """``value`` as the config file would spell it: durations as "30m", lists as lists."""
    if setting.parse is parse_duration:
        return format_duration(value)
    if isinstance(value, tuple):
        return [_rule_display(v) if isinstance(v, HostRule) else v for v in value]
    return value


def _rule_display(rule: HostRule) -> dict[str, Any]:
    shown: dict[str, Any] = {"match": rule.match}
    if rule.per_host is not None:
        shown["per_host"] = rule.per_host
    if rule.timeout is not None:
        shown["timeout"] = format_duration(rule.timeout)
    return shown


def shipped_seeds() -> Path:
    """The project's ``seeds/`` folder: inside the package in a wheel, beside it in a checkout."""
    packaged = Path(__file__).parent / "_seeds"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "seeds"


def load_settings(
    config_path: Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """The settings for this process.

    ``config_path`` is the file to read (it must exist); None means ``./ingest.toml`` when there
    is one, else the built-in default, whose only source is the shipped ``seeds/`` folder.
    """
    env = os.environ if env is None else env
    if config_path is None and Path(CONFIG_FILE_NAME).is_file():
        config_path = Path(CONFIG_FILE_NAME)
    values = {s.key: s.default for s in SETTINGS}
    origins = dict.fromkeys(values, "default")
    hooks: tuple[HookSpec, ...] = ()
    if config_path is None:
        sources: tuple[SourceSpec, ...] = (SourceSpec(url=str(shipped_seeds())),)
        sources_origin = "default"
    else:
        document = _read_toml(config_path)
        where = str(config_path)
        for key, value in _file_settings(document, where).items():
            values[key] = _parse(_BY_KEY[key], value, f"{where}: [{key.replace('.', '] ', 1)}")
            origins[key] = where
        sources = _file_sources(document.get("sources", []), where, config_path.parent)
        hooks = _file_hooks(document.get("hooks", []), where, config_path.parent)
        sources_origin = where
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _CLI_ENV:
            continue
        if name == "INGEST_SOURCES":
            sources = tuple(
                _source_spec({"url": url}, name, Path.cwd()) for url in _string_list(raw)
            )
            sources_origin = f"env {name}"
            continue
        setting = _BY_ENV.get(name)
        if setting is None:
            raise ConfigError(name, f"unknown setting; known variables: {_known_env()}")
        values[setting.key] = _parse(setting, raw, f"env {name}")
        origins[setting.key] = f"env {name}"
    origins["sources"] = sources_origin
    return _build(values, sources, origins, config_path, hooks)


def _build(
    values: Mapping[str, Any],
    sources: tuple[SourceSpec, ...],
    origins: Mapping[str, str],
    config_path: Path | None,
    hooks: tuple[HookSpec, ...],
) -> Settings:
    sections = {
        name: cls(**{f.name: values[f"{name}.{f.name}"] for f in fields(cls)})
        for name, cls in _SECTIONS.items()
    }
    schedule: ScheduleSettings = sections["schedule"]
    if schedule.min_interval > schedule.max_interval:
        raise ConfigError(
            "[schedule] min_interval",
            f"{format_duration(schedule.min_interval)} is longer than max_interval "
            f"{format_duration(schedule.max_interval)}",
        )
    lease, (low, high) = sections["websub"].lease, WEBSUB_LEASE_BOUNDS
    if not low <= lease <= high:
        raise ConfigError(
            "[websub] lease",
            f"{format_duration(lease)} is outside {format_duration(low)}..{format_duration(high)}",
        )
    return Settings(
        **sections, sources=sources, origins=dict(origins), config_path=config_path, hooks=hooks
    )


def _known_env() -> str:
    return ", ".join(sorted([*_BY_ENV, "INGEST_SOURCES", *_CLI_ENV]))


def _parse(setting: Setting, value: object, where: str) -> Any:
    try:
        return setting.parse(value)
    except RuleError as exc:
        raise ConfigError(f"{where}[{exc.index}]", exc.reason) from exc
    except ValueError as exc:
        raise ConfigError(where, str(exc)) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "config file not found") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc


def _file_settings(document: Mapping[str, Any], where: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for section, table in document.items():
        if section in _LISTS:
            continue
        if section not in _SECTIONS:
            known = ", ".join([*(f"[{s}]" for s in _SECTIONS), *(f"[[{s}]]" for s in _LISTS)])
            raise ConfigError(f"{where}: {section}", f"unknown table or key; known: {known}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section}", "must be a table, e.g. [fetch]")
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in _BY_KEY:
                known = ", ".join(k.split(".")[1] for k in _BY_KEY if k.startswith(section + "."))
                raise ConfigError(f"{where}: [{section}] {name}", f"unknown key; known: {known}")
            found[key] = value
    return found


def _file_sources(raw: object, where: str, base: Path) -> tuple[SourceSpec, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: sources", "must be an array of tables: [[sources]]")
    return tuple(
        _source_spec(entry, f"{where}: sources[{index}]", base) for index, entry in enumerate(raw)
    )


def _source_spec(entry: object, where: str, base: Path) -> SourceSpec:
    if not isinstance(entry, dict):
        raise ConfigError(where, "must be a table with at least a url")
    unknown = set(entry) - _SOURCE_KEYS
    if unknown:
        raise ConfigError(
            f"{where}.{sorted(unknown)[0]}",
            f"unknown key; known: {', '.join(sorted(_SOURCE_KEYS))}",
        )
    if "url" not in entry:
        raise ConfigError(where, "has no url")

    def pick(key: str, parse: Callable[[object], Any]) -> Any:
        if key not in entry:
            return None
        try:
            return parse(entry[key])
        except RuleError as exc:
            raise ConfigError(f"{where}.{key}[{exc.index}]", exc.reason) from exc
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}", str(exc)) from exc

    interval = pick("interval", parse_duration)
    return SourceSpec(
        url=pick("url", lambda value: canonical_source_url(_text(value), base)),
        name=pick("name", _text),
        categories=pick("categories", _categories) or (),
        interval_s=round(interval) if interval else None,
        comments=pick("comments", _boolean),
        max_body=pick("max_body", parse_size),
        keep=pick("keep", parse_rules) or (),
        block=pick("block", parse_rules) or (),
    )


def _categories(value: object) -> tuple[str, ...]:
    """A list of category names; a bare string is a list of one (it may contain commas)."""
    return (_text(value),) if isinstance(value, str) else _string_list(value)


def canonical_source_url(url: str, base: Path) -> str:
    """How a source is stored: its http(s) URL in canonical form (``ingest.urls.source_url``),
    or the absolute path of a local one.

    ``base`` is the folder relative paths are taken from (the config file's). Raises ValueError
    for any other scheme: nothing but http(s) and local files is ever read (DESIGN §3).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if is_http_url(url):
        return source_url(url)
    if scheme == "file":
        return str(Path(unquote(parts.path)).resolve())
    if scheme and len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise ValueError(
            f"{url!r}: the {scheme}: scheme is not supported; use http(s), file:// or a path"
        )
    return str((base / Path(url).expanduser()).resolve())
