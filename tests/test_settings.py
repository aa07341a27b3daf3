"""Settings: read once from the environment; a bad value stops start-up naming the variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hub.settings import ProcessOptions, Settings, SettingsError, embedded

pytestmark = pytest.mark.unit

KEY = Fernet.generate_key().decode()
SECRET = "s" * 40


def env(**extra: str) -> dict[str, str]:
    return {"HUB_SECRET_KEY": SECRET, "HUB_ENCRYPTION_KEYS": KEY, **extra}


def test_defaults_are_the_embedded_default(tmp_path: Path) -> None:
    s = Settings.from_env(env(HUB_DATA_DIR=str(tmp_path)))
    assert s.redis_url is None
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/hub.db"
    assert s.encryption_keys == (KEY,)
    assert s.max_frame_bytes == 65536


def test_settings_are_frozen(tmp_path: Path) -> None:
    s = Settings.from_env(env())
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.redis_url = "redis://x"  # type: ignore[misc]


def test_postgres_url_gets_the_async_driver() -> None:
    s = Settings.from_env(env(DATABASE_URL="postgresql://u@h:5432/db"))
    assert s.database_url == "postgresql+asyncpg://u@h:5432/db"
    assert not s.is_sqlite


def test_tunables_with_units(tmp_path: Path) -> None:
    s = Settings.from_env(
        env(HUB_MAX_FRAME_BYTES="1024", HUB_HELLO_TIMEOUT_S="2.5", HUB_SESSION_MAX_AGE_S="60")
    )
    assert (s.max_frame_bytes, s.hello_timeout_s, s.session_max_age_s) == (1024, 2.5, 60)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"HUB_ENCRYPTION_KEYS": KEY}, "HUB_SECRET_KEY"),
        ({"HUB_SECRET_KEY": "short", "HUB_ENCRYPTION_KEYS": KEY}, "HUB_SECRET_KEY"),
        ({"HUB_SECRET_KEY": SECRET}, "HUB_ENCRYPTION_KEYS"),
        (env(HUB_ENCRYPTION_KEYS=KEY + ",not-a-key"), "HUB_ENCRYPTION_KEYS"),
        (env(DATABASE_URL="mysql://x/y"), "DATABASE_URL"),
        (env(REDIS_URL="http://localhost"), "REDIS_URL"),
        (env(HUB_PUBLIC_URL="example.com"), "HUB_PUBLIC_URL"),
        (env(HUB_MAX_FRAME_BYTES="lots"), "HUB_MAX_FRAME_BYTES"),
        (env(HUB_MAX_FRAME_BYTES="-5"), "HUB_MAX_FRAME_BYTES"),
        (env(HUB_HELLO_TIMEOUT_S="0"), "HUB_HELLO_TIMEOUT_S"),
        (env(HUB_REDIS_PREFIX="a{b}"), "HUB_REDIS_PREFIX"),
    ],
)
def test_bad_values_name_the_variable_in_one_sentence(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(environ)
    message = str(info.value)
    assert variable in message
    assert message.count(". ") == 0 or message.endswith(".")
    assert "\n" not in message


def test_demo_generates_secrets_once_and_reuses_them(tmp_path: Path) -> None:
    first = Settings.from_env({}, demo=True, data_dir=tmp_path)
    second = Settings.from_env({}, demo=True, data_dir=tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert first.encryption_keys == second.encryption_keys
    Fernet(first.encryption_keys[0])
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_command_s_own_options_are_read_here_and_checked() -> None:
    assert ProcessOptions.from_env({}) == ProcessOptions(log_format=None, worker_port=None)
    read = ProcessOptions.from_env({"HUB_LOG_FORMAT": "json", "HUB_WORKER_PORT": "9100"})
    assert read == ProcessOptions(log_format="json", worker_port=9100)
    with pytest.raises(SettingsError, match="HUB_WORKER_PORT must be a positive integer"):
        ProcessOptions.from_env({"HUB_WORKER_PORT": "ninety"})


def test_the_demo_is_embedded_whatever_the_environment_names(tmp_path: Path) -> None:
    outside = env(DATABASE_URL="postgresql://u@h/db", REDIS_URL="redis://h:6379/0")
    settings = embedded(tmp_path, outside)
    assert settings.is_sqlite and settings.redis_url is None
    assert settings.secret_key == SECRET


def test_only_the_settings_module_reads_the_environment() -> None:
    import ast

    root = Path(__file__).resolve().parent.parent
    readers = []
    for path in sorted([*root.glob("hub/**/*.py"), *root.glob("adapters/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                if isinstance(node.value, ast.Name) and node.value.id == "os":
                    readers.append(f"{path.relative_to(root)}:{node.lineno}")
    assert readers and all(r.startswith("hub/settings.py:") for r in readers), readers


def test_media_defaults_to_the_filesystem_under_the_data_directory(tmp_path: Path) -> None:
    s = Settings.from_env(env(HUB_DATA_DIR=str(tmp_path)))
    assert (s.media_root, s.media_bucket) == (None, None)
    assert s.max_media_bytes == 25 * 1024 * 1024


def test_media_url_names_a_directory() -> None:
    s = Settings.from_env(env(HUB_MEDIA_URL="file:///var/lib/hub/media"))
    assert (s.media_root, s.media_bucket) == (Path("/var/lib/hub/media"), None)


def test_media_url_names_a_bucket_and_prefix_with_its_endpoint_and_credentials() -> None:
    s = Settings.from_env(
        env(
            HUB_MEDIA_URL="s3://hub-media/prod/media/",
            HUB_S3_ENDPOINT_URL="http://127.0.0.1:9000/",
            HUB_S3_REGION="eu-central-1",
            AWS_ACCESS_KEY_ID="key-id",
            AWS_SECRET_ACCESS_KEY="secret-value",
            HUB_MAX_MEDIA_BYTES="1048576",
        )
    )
    assert (s.media_bucket, s.media_prefix) == ("hub-media", "prod/media")
    assert (s.s3_endpoint_url, s.s3_region) == ("http://127.0.0.1:9000", "eu-central-1")
    assert (s.s3_access_key_id, s.s3_secret_access_key) == ("key-id", "secret-value")
    assert s.max_media_bytes == 1048576
    assert "secret-value" not in repr(s) and "key-id" not in repr(s)


def test_media_url_without_credentials_leaves_them_to_the_client() -> None:
    s = Settings.from_env(env(HUB_MEDIA_URL="s3://hub-media"))
    assert (s.media_bucket, s.media_prefix, s.s3_access_key_id) == ("hub-media", "", None)


@pytest.mark.parametrize(
    ("extra", "variable"),
    [
        ({"HUB_MEDIA_URL": "ftp://host/media"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "/var/lib/hub/media"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "file://relative/media"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://Bad_Bucket"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://key:secret@hub-media"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://hub-media/a/../b"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://hub-media/a//b"}, "HUB_MEDIA_URL"),
        ({"HUB_MEDIA_URL": "s3://hub-media?region=x"}, "HUB_MEDIA_URL"),
        (
            {"HUB_MEDIA_URL": "s3://hub-media", "HUB_S3_ENDPOINT_URL": "minio:9000"},
            "HUB_S3_ENDPOINT_URL",
        ),
        ({"HUB_MEDIA_URL": "s3://hub-media", "HUB_S3_REGION": "eu central"}, "HUB_S3_REGION"),
        ({"HUB_MEDIA_URL": "s3://hub-media", "AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
        ({"HUB_MEDIA_URL": "s3://hub-media", "AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
        ({"HUB_MAX_MEDIA_BYTES": "0"}, "HUB_MAX_MEDIA_BYTES"),
    ],
)
def test_bad_media_values_name_the_variable_in_one_sentence(
    extra: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(**extra))
    message = str(info.value)
    assert variable in message
    assert message.endswith(".") and "\n" not in message
    assert "secret" not in message.replace("AWS_SECRET_ACCESS_KEY", "")


def test_durable_ack_modes_and_their_refusals(tmp_path: Path) -> None:
    redis = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    default = Settings.from_env(env(**redis))
    assert (default.bus_durable_ack, default.bus_durable_replicas) == ("off", 1)
    assert default.bus_durable_timeout_ms == 2000
    strict = Settings.from_env(
        env(
            **redis,
            HUB_BUS_DURABLE_ACK="Replica",
            HUB_BUS_DURABLE_REPLICAS="2",
            HUB_BUS_DURABLE_TIMEOUT_MS="500",
        )
    )
    assert (strict.bus_durable_ack, strict.bus_durable_replicas) == ("replica", 2)
    assert strict.bus_durable_timeout_ms == 500
    with pytest.raises(SettingsError, match="HUB_BUS_DURABLE_ACK must be off, aof or replica"):
        Settings.from_env(env(**redis, HUB_BUS_DURABLE_ACK="fsync"))
    with pytest.raises(SettingsError, match="HUB_BUS_DURABLE_ACK needs REDIS_URL"):
        Settings.from_env(env(HUB_BUS_DURABLE_ACK="aof"))
    with pytest.raises(SettingsError, match="not supported with HUB_REDIS_CLUSTER"):
        Settings.from_env(env(**redis, HUB_REDIS_CLUSTER="true", HUB_BUS_DURABLE_ACK="aof"))
    # The demo has no Redis to wait for: the setting is no reason to refuse it.
    assert embedded(tmp_path, env(HUB_BUS_DURABLE_ACK="aof")).redis_url is None


def test_mail_settings_and_their_refusals() -> None:
    s = Settings.from_env(env())
    assert s.smtp_host is None and s.smtp_tls == "starttls"  # log-only mode
    assert s.invitation_ttl_s == 7 * 24 * 3600 and s.password_reset_ttl_s == 3600
    s = Settings.from_env(
        env(
            HUB_SMTP_HOST="smtp.example.com",
            HUB_PUBLIC_URL="https://hub.example.com",
            HUB_SMTP_PORT="465",
            HUB_SMTP_TLS="TLS",
            HUB_SMTP_USER="hub",
            HUB_SMTP_PASSWORD="smtp-secret",
            HUB_MAIL_FROM="SosyoCRM <hub@example.com>",
            HUB_INVITATION_TTL_S="86400",
            HUB_PASSWORD_RESET_TTL_S="900",
        )
    )
    assert (s.smtp_host, s.smtp_port, s.smtp_tls, s.smtp_user) == (
        "smtp.example.com",
        465,
        "tls",
        "hub",
    )
    assert s.mail_from == "SosyoCRM <hub@example.com>" and s.password_reset_ttl_s == 900
    assert "smtp-secret" not in repr(s)
    for bad, named in (
        ({"HUB_SMTP_TLS": "ssl"}, "HUB_SMTP_TLS must be none, starttls or tls"),
        ({"HUB_SMTP_PORT": "0"}, "HUB_SMTP_PORT"),
        ({"HUB_SMTP_USER": "hub"}, "HUB_SMTP_USER and HUB_SMTP_PASSWORD go together"),
        ({"HUB_MAIL_FROM": "nobody"}, "HUB_MAIL_FROM"),
        ({"HUB_MAIL_FROM": "a@b.example\r\nBcc: x@y.example"}, "HUB_MAIL_FROM"),
        ({"HUB_INVITATION_TTL_S": "-1"}, "HUB_INVITATION_TTL_S"),
    ):
        with pytest.raises(SettingsError, match=named):
            Settings.from_env(env(**bad))


def test_smtp_without_a_public_url_is_refused(tmp_path: Path) -> None:
    """A letter's link comes from HUB_PUBLIC_URL only, never from a request's Host header:
    real mail without one stops start-up; log-only mail and the demo (which sets its own)
    do not need it."""
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env(HUB_SMTP_HOST="smtp.example.com"))
    message = str(info.value)
    assert message.startswith("Environment variable HUB_PUBLIC_URL is missing")
    assert "HUB_SMTP_HOST" in message and message.count(". ") == 0 and "\n" not in message
    assert Settings.from_env(env()).public_url is None  # log-only mail
    with_url = env(HUB_SMTP_HOST="smtp.example.com", HUB_PUBLIC_URL="https://hub.example.com/")
    assert Settings.from_env(with_url).public_url == "https://hub.example.com"
    assert embedded(tmp_path, env(HUB_SMTP_HOST="smtp.example.com")).smtp_host is not None
