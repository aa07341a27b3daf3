"""The one place that reads the environment.

`Settings.from_env()` is called once at start-up; the frozen object is passed down
to everything that needs a value. A missing or malformed variable stops start-up
with one sentence naming it (`SettingsError`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from cryptography.fernet import Fernet

from hub import filemodes

T = TypeVar("T")

DEFAULT_DATA_DIR = "hub-data"
MIN_SECRET_KEY_CHARS = 32


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    secret_key: str
    encryption_keys: tuple[str, ...]
    data_dir: Path
    database_url: str
    redis_url: str | None = None
    public_url: str | None = None
    redis_prefix: str = "hub"
    redis_cluster: bool = False  # REDIS_URL names one node of a Redis Cluster
    # What an ack waits for: off (Redis has it in memory), aof (fsynced), replica (replicated)
    bus_durable_ack: str = "off"
    bus_durable_replicas: int = 1  # with `replica`: how many replicas must have the entry
    demo: bool = False
    node_id: str = ""

    # The hosted Meta app (one callback URL for every customer's accounts)
    meta_app_id: str | None = None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None

    # Platform API base URLs (tests point them at a fake platform on loopback)
    graph_url: str = "https://graph.facebook.com/v23.0"
    instagram_graph_url: str = "https://graph.instagram.com/v23.0"
    telegram_api_url: str = "https://api.telegram.org"
    instagram_authorize_url: str = "https://www.instagram.com/oauth/authorize"
    instagram_oauth_url: str = "https://api.instagram.com/oauth"

    # Business Login for Instagram (the hosted app's Instagram app id and secret)
    instagram_app_id: str | None = None
    instagram_app_secret: str | None = None

    # Facebook Login for Business and WhatsApp Embedded Signup (the hosted Meta app's Login
    # configurations; without one, the Facebook dialog asks for the minimal scopes itself)
    facebook_dialog_url: str = "https://www.facebook.com/v23.0/dialog/oauth"
    facebook_login_config_id: str | None = None
    whatsapp_signup_config_id: str | None = None

    # Media (HUB_MEDIA_URL): the filesystem under media_root (None: <data_dir>/media), or the
    # S3-compatible bucket media_bucket under media_prefix; credentials from AWS_* when set
    media_root: Path | None = None
    media_bucket: str | None = None
    media_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = field(default=None, repr=False)
    s3_secret_access_key: str | None = field(default=None, repr=False)

    # E-mail (hub.mail): over SMTP when smtp_host is set, else written to files under
    # <data_dir>/mail (the demo's log-only mode)
    smtp_host: str | None = None
    smtp_port: int | None = None  # None: 465 with tls, else 587 (25 with none)
    smtp_tls: str = "starttls"  # none | starttls | tls
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    mail_from: str = "SosyoCRM <no-reply@localhost>"

    # Monitoring: /metrics needs this bearer token when set, else a loopback client
    metrics_token: str | None = field(default=None, repr=False)

    # Limits
    max_frame_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    max_message_chars: int = 10_000
    outbox_max_frames: int = 1024
    stream_maxlen: int = 100_000
    resume_max_events: int = 10_000
    page_max_items: int = 200
    visitor_messages_per_minute: int = 20  # per web-chat visitor, counted on the bus
    max_media_bytes: int = 25 * 1024 * 1024  # one stored media object
    # Per client address, on each node (docs/operations.md, Limits per address): open sockets
    # (an office behind one NAT shares an address: 200 is a large office's agents, a few tabs
    # each, while one address can hold at most 2% of a node's 10,000 sockets), and connections
    # still sending their first request's headers (a client's arrive in one packet, so even a
    # burst of 100 from one address is rare; the cap keeps a slowloris to that many descriptors)
    max_sockets_per_address: int = 200
    max_pending_per_address: int = 100

    # Timeouts and lifetimes
    hello_timeout_s: float = 10.0
    header_timeout_s: float = 10.0  # for a request's headers, from its first byte or the connect
    ping_interval_s: float = 20.0
    session_max_age_s: int = 14 * 24 * 3600
    socket_token_max_age_s: int = 120
    visitor_token_max_age_s: int = 180 * 24 * 3600
    dedupe_ttl_s: int = 7 * 24 * 3600
    claim_idle_ms: int = 30_000
    bus_durable_timeout_ms: int = 2000  # a strict ack's wait; then the retryable `unavailable`
    cache_ttl_s: float = 30.0
    # What a reconnect needs (members, API tokens, web chats) as last read, for a database
    # outage: kept on the bus this long after the last read (hub/storage/lastknown.py)
    last_known_ttl_s: int = 24 * 3600
    presence_ttl_s: int = 90  # an agent's presence lapses this long after its last ping
    deletion_lease_s: float = 60.0  # a deletion request's runner must save within this
    retention_sweep_s: float = 3600.0  # how often a worker deletes messages past retention
    # A platform's change to a message that never came (an edit, a status...) is kept this long
    waiting_change_ttl_s: int = 7 * 24 * 3600
    shutdown_grace_s: float = 10.0  # on SIGTERM: for requests and batches in hand to finish
    hooks_retry_s: float = 5.0  # how often a worker sends the outbound webhooks that are due
    hooks_timeout_s: float = 10.0  # one outbound webhook request
    template_sync_s: float = 6 * 3600.0  # how often a worker re-reads WhatsApp templates
    media_fetch_timeout_s: float = 60.0  # fetching one inbound file, every try included
    # Media links from webhooks to private addresses and plain http (for loopback benchmarks)
    media_allow_private: bool = False
    hooks_allow_private: bool = False  # outbound webhooks to private addresses and plain http
    # Web Push to a loopback endpoint over plain http (the demo; HUB_PUSH_ALLOW_LOOPBACK)
    push_allow_loopback: bool = False
    hooks_backoff: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0, 7200.0)  # s, between tries
    invitation_ttl_s: int = 7 * 24 * 3600  # an invitation's link works this long
    password_reset_ttl_s: int = 3600  # a password-reset link works this long

    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, demo: bool = False, **overrides: object
    ) -> Settings:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        data_dir = Path(
            str(overrides.pop("data_dir", None) or env.get("HUB_DATA_DIR") or DEFAULT_DATA_DIR)
        )
        secret_key = reader.get("HUB_SECRET_KEY", str, default=None)
        keys_raw = reader.get("HUB_ENCRYPTION_KEYS", str, default=None)
        if demo:
            secret_key = secret_key or _demo_secret(
                data_dir / "secret_key", lambda: os.urandom(32).hex()
            )
            keys_raw = keys_raw or _demo_secret(
                data_dir / "encryption_key", lambda: Fernet.generate_key().decode()
            )
        if not secret_key:
            raise SettingsError(
                "Environment variable HUB_SECRET_KEY is missing; set it to a random string of "
                f"at least {MIN_SECRET_KEY_CHARS} characters (only `hub demo` generates one)."
            )
        if len(secret_key) < MIN_SECRET_KEY_CHARS:
            raise SettingsError(
                f"Environment variable HUB_SECRET_KEY is too short; it needs at least "
                f"{MIN_SECRET_KEY_CHARS} characters."
            )
        if not keys_raw:
            raise SettingsError(
                "Environment variable HUB_ENCRYPTION_KEYS is missing; set it to one or more "
                "comma-separated Fernet keys, newest first."
            )
        keys = tuple(k.strip() for k in keys_raw.split(",") if k.strip())
        for index, key in enumerate(keys):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise SettingsError(
                    f"Environment variable HUB_ENCRYPTION_KEYS holds a malformed Fernet key at "
                    f"position {index + 1}; each key is 32 url-safe base64-encoded bytes."
                ) from None
        database_url = _database_url(
            env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{(data_dir / 'hub.db').resolve()}"
        )
        redis_url = env.get("REDIS_URL") or None
        if redis_url is not None and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError(
                "Environment variable REDIS_URL must start with redis://, rediss:// or unix://."
            )
        public_url = env.get("HUB_PUBLIC_URL") or None
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(
                    "Environment variable HUB_PUBLIC_URL must be an absolute http(s) URL, "
                    "such as https://hub.example.com."
                )
            public_url = public_url.rstrip("/")
        values: dict[str, object] = dict(
            secret_key=secret_key,
            encryption_keys=keys,
            data_dir=data_dir,
            database_url=database_url,
            redis_url=redis_url,
            public_url=public_url,
            redis_prefix=reader.get("HUB_REDIS_PREFIX", _prefix, default="hub"),
            redis_cluster=reader.get("HUB_REDIS_CLUSTER", _flag, default=False),
            bus_durable_ack=reader.get("HUB_BUS_DURABLE_ACK", _durable_mode, default="off"),
            bus_durable_replicas=reader.get("HUB_BUS_DURABLE_REPLICAS", _positive_int, default=1),
            demo=demo,
            node_id=reader.get("HUB_NODE_ID", str, default=os.urandom(6).hex()),
            meta_app_id=env.get("HUB_META_APP_ID") or None,
            meta_app_secret=env.get("HUB_META_APP_SECRET") or None,
            meta_verify_token=env.get("HUB_META_VERIFY_TOKEN") or None,
        )
        values["instagram_app_id"] = env.get("HUB_INSTAGRAM_APP_ID") or None
        values["instagram_app_secret"] = env.get("HUB_INSTAGRAM_APP_SECRET") or None
        values["facebook_login_config_id"] = env.get("HUB_FACEBOOK_LOGIN_CONFIG_ID") or None
        values["whatsapp_signup_config_id"] = env.get("HUB_WHATSAPP_SIGNUP_CONFIG_ID") or None
        values["metrics_token"] = env.get("HUB_METRICS_TOKEN") or None
        values.update(_media(env))
        values.update(_mail(env, reader))
        values["hooks_allow_private"] = reader.get("HUB_HOOKS_ALLOW_PRIVATE", _flag, default=False)
        values["media_allow_private"] = reader.get("HUB_MEDIA_ALLOW_PRIVATE", _flag, default=False)
        values["push_allow_loopback"] = reader.get("HUB_PUSH_ALLOW_LOOPBACK", _flag, default=demo)
        if env.get("HUB_HOOKS_BACKOFF"):  # seconds between an outbound webhook's tries
            values["hooks_backoff"] = reader.get("HUB_HOOKS_BACKOFF", _seconds_list, default=None)
        for name in (
            "graph_url",
            "instagram_graph_url",
            "telegram_api_url",
            "instagram_authorize_url",
            "instagram_oauth_url",
            "facebook_dialog_url",
        ):
            variable = "HUB_" + name.upper()
            if env.get(variable):
                values[name] = _base_url(variable, env[variable])
        for name, kind in _TUNABLES.items():
            variable = "HUB_" + name.upper()
            if variable in env:
                values[name] = reader.get(variable, kind, default=None)
        values.update(overrides)
        _check_durable(values, demo)
        _check_letters(values, demo)
        return cls(**values)  # type: ignore[arg-type]


def _mail(env: Mapping[str, str], reader: _Reader) -> dict[str, object]:
    """The SMTP server and the sender (HUB_SMTP_*, HUB_MAIL_FROM)."""
    values: dict[str, object] = {
        "smtp_host": env.get("HUB_SMTP_HOST") or None,
        "smtp_port": reader.get("HUB_SMTP_PORT", _positive_int, default=None),
        "smtp_tls": reader.get("HUB_SMTP_TLS", _smtp_tls, default="starttls"),
        "smtp_user": env.get("HUB_SMTP_USER") or None,
        "smtp_password": env.get("HUB_SMTP_PASSWORD") or None,
    }
    sender = env.get("HUB_MAIL_FROM") or None
    if sender is not None:
        if "@" not in sender or any(c in sender for c in "\r\n"):
            raise SettingsError(
                "Environment variable HUB_MAIL_FROM must be an e-mail address, such as "
                "SosyoCRM <hub@example.com>."
            )
        values["mail_from"] = sender
    if (values["smtp_user"] is None) != (values["smtp_password"] is None):
        raise SettingsError(
            "Environment variables HUB_SMTP_USER and HUB_SMTP_PASSWORD go together; set both "
            "or neither."
        )
    return values


def _smtp_tls(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("none", "starttls", "tls"):
        raise ValueError
    return value


def _check_letters(values: Mapping[str, object], demo: bool) -> None:
    """A letter's link leads to HUB_PUBLIC_URL and nowhere else: never to the host a request
    named, which its sender writes (`hub.web.http.letter_base`). `hub demo` sets its own."""
    if demo or values.get("smtp_host") is None or values.get("public_url") is not None:
        return
    raise SettingsError(
        "Environment variable HUB_PUBLIC_URL is missing; with HUB_SMTP_HOST set it is needed "
        "for the links in letters, such as https://hub.example.com."
    )


def _check_durable(values: Mapping[str, object], demo: bool) -> None:
    if values.get("bus_durable_ack", "off") == "off" or demo:
        return
    if values.get("redis_url") is None:
        raise SettingsError(
            "Environment variable HUB_BUS_DURABLE_ACK needs REDIS_URL: the in-process bus keeps "
            "nothing durable to wait for."
        )
    if values.get("redis_cluster"):
        raise SettingsError(
            "Environment variable HUB_BUS_DURABLE_ACK is not supported with HUB_REDIS_CLUSTER "
            "yet; set it to off, or run Redis with appendfsync always."
        )


_TUNABLES: dict[str, Callable[[str], object]] = {}


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError
    return value in ("true", "1", "yes")


def _seconds_list(raw: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in raw.split(","))
    if not values or len(values) > 20 or not all(0 < v <= 86400 for v in values):
        raise ValueError
    return values


def _durable_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("off", "aof", "replica"):
        raise ValueError
    return value


def _prefix(raw: str) -> str:
    if not raw or any(c in raw for c in " {}"):
        raise ValueError
    return raw


for _name, _default in Settings.__dataclass_fields__.items():
    if _name.endswith(
        (
            "_bytes",
            "_frames",
            "_maxlen",
            "_chars",
            "_events",
            "_items",
            "_ms",
            "_minute",
            "_per_address",
        )
    ) or (_name.endswith("_s") and _default.type == "int"):
        _TUNABLES[_name] = _positive_int
    elif _name.endswith("_s"):
        _TUNABLES[_name] = _positive_float


@dataclass(frozen=True, slots=True)
class ProcessOptions:
    """What the `hub` command reads before it builds `Settings`: the log format (it logs the
    settings' own errors), the worker's health port (the default of `--port`) and the worker's
    consumer groups (the defaults of `--groups` and `--without`, comma-separated names)."""

    log_format: str | None = None
    worker_port: int | None = None
    worker_groups: str | None = None
    worker_without: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProcessOptions:
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        groups = env.get("HUB_WORKER_GROUPS") or None
        without = env.get("HUB_WORKER_WITHOUT") or None
        if groups and without:
            raise SettingsError(
                "Environment variables HUB_WORKER_GROUPS and HUB_WORKER_WITHOUT exclude each "
                "other; set one of them."
            )
        return cls(
            log_format=env.get("HUB_LOG_FORMAT") or None,
            worker_port=reader.get("HUB_WORKER_PORT", _positive_int, default=None),
            worker_groups=groups,
            worker_without=without,
        )


def embedded(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of `hub demo`: the embedded default by definition (its own SQLite file and
    the in-process bus, whatever DATABASE_URL and REDIS_URL say), secrets made on first use."""
    env = os.environ if environ is None else environ
    own = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return Settings.from_env(own, demo=True, data_dir=data_dir)


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str, cast: Callable[[str], T], *, default: T | None) -> T:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default  # type: ignore[return-value]
        try:
            return cast(raw)
        except ValueError:
            kind = {
                "_positive_int": "a positive integer",
                "_positive_float": "a positive number",
                "_flag": "true or false",
                "_durable_mode": "off, aof or replica",
                "_smtp_tls": "none, starttls or tls",
            }
            expected = kind.get(getattr(cast, "__name__", ""), "a valid value")
            raise SettingsError(
                f"Environment variable {name} must be {expected}, not {raw!r}."
            ) from None


def _base_url(variable: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"Environment variable {variable} must be an absolute http(s) URL.")
    return raw.rstrip("/")


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _media(env: Mapping[str, str]) -> dict[str, object]:
    """HUB_MEDIA_URL and, for an s3:// one, where the bucket is and how to sign in."""
    raw = env.get("HUB_MEDIA_URL") or ""
    if not raw:
        return {}
    parts = urlsplit(raw)
    if parts.query or parts.fragment:
        raise SettingsError(
            "Environment variable HUB_MEDIA_URL must have no query or fragment; the S3 "
            "settings have their own variables (HUB_S3_ENDPOINT_URL, HUB_S3_REGION)."
        )
    if parts.scheme == "file":
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise SettingsError(
                "Environment variable HUB_MEDIA_URL must name an absolute directory, such as "
                "file:///var/lib/hub/media."
            )
        return {"media_root": Path(path)}
    if parts.scheme != "s3":
        raise SettingsError(
            "Environment variable HUB_MEDIA_URL must be a file:///absolute/path or an "
            "s3://bucket/optional/prefix URL."
        )
    if "@" in parts.netloc or ":" in parts.netloc:
        raise SettingsError(
            "Environment variable HUB_MEDIA_URL must not hold credentials or a port; set "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and HUB_S3_ENDPOINT_URL instead."
        )
    if not _BUCKET.fullmatch(parts.netloc) or ".." in parts.netloc:
        raise SettingsError(
            "Environment variable HUB_MEDIA_URL must name a valid bucket (3 to 63 lowercase "
            "letters, digits, dots and hyphens), such as s3://hub-media/prod."
        )
    prefix = unquote(parts.path).strip("/")
    if prefix and any(s in ("", ".", "..") or "\\" in s for s in prefix.split("/")):
        raise SettingsError(
            "Environment variable HUB_MEDIA_URL has a malformed prefix; use plain "
            "/-separated names, such as s3://hub-media/prod."
        )
    endpoint = env.get("HUB_S3_ENDPOINT_URL") or None
    region = env.get("HUB_S3_REGION") or None
    if region is not None and not re.fullmatch(r"[a-z0-9-]{1,64}", region):
        raise SettingsError(
            "Environment variable HUB_S3_REGION must be a region name, such as eu-central-1."
        )
    key_id = env.get("AWS_ACCESS_KEY_ID") or None
    secret = env.get("AWS_SECRET_ACCESS_KEY") or None
    if (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        raise SettingsError(
            f"Environment variable {missing} is missing; S3 credentials need both "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    return {
        "media_bucket": parts.netloc,
        "media_prefix": prefix,
        "s3_endpoint_url": _base_url("HUB_S3_ENDPOINT_URL", endpoint) if endpoint else None,
        "s3_region": region,
        "s3_access_key_id": key_id,
        "s3_secret_access_key": secret,
    }


def _database_url(url: str) -> str:
    scheme = url.split(":", 1)[0]
    if scheme in ("postgres", "postgresql"):
        return "postgresql+asyncpg:" + url.split(":", 1)[1]
    if scheme == "sqlite":
        return "sqlite+aiosqlite:" + url.split(":", 1)[1]
    if scheme in ("postgresql+asyncpg", "sqlite+aiosqlite"):
        return url
    raise SettingsError(
        "Environment variable DATABASE_URL must be a postgresql:// or sqlite:// URL."
    )


def _demo_secret(path: Path, make: Callable[[], str]) -> str:
    """The demo keeps its generated secrets in its data directory, so a second run reuses them."""
    filemodes.private_dir(path.parent)
    if path.exists():
        filemodes.tighten(path, filemodes.PRIVATE_FILE)
        return path.read_text().strip()
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, filemodes.PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value
