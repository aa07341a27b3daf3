"""The SQLite file (with its -wal and -shm), the generated keys and the demo's credentials
are readable by their owner only, in a 0700 data directory, whatever the umask; files found
wider are tightened, and a warning says so."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from hub.demo import seed
from hub.settings import Settings, embedded
from hub.storage.engine import make_engine, migrate, sessionmaker
from hub.storage.store import Store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The usual umask, which leaves new files readable by everyone."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


async def write_something(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        db = Path(settings.database_url.split("///", 1)[1])
        for suffix in ("-wal", "-shm"):  # there while a connection is open
            assert mode(db.with_name(db.name + suffix)) == 0o600, suffix
    finally:
        await engine.dispose()


def test_a_new_data_directory_is_its_owners_only(tmp_path: Path) -> None:
    data = tmp_path / "hub-data"
    settings = embedded(data)  # generates the secret key and the encryption key
    migrate(settings)
    asyncio.run(write_something(settings))
    engine = make_engine(settings)
    try:
        demo = asyncio.run(seed(Store(sessionmaker(engine)), data, ["http://127.0.0.1:8000"]))
    finally:
        asyncio.run(engine.dispose())
    assert demo.password
    assert mode(data) == 0o700
    for name in ("secret_key", "encryption_key", "hub.db", "demo.json"):
        assert mode(data / name) == 0o600, name


def test_files_found_open_to_others_are_tightened_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "hub-data"
    data.mkdir(mode=0o755)
    (data / "secret_key").write_text("s" * 64)
    (data / "encryption_key").write_text(Fernet.generate_key().decode())
    for name in ("hub.db", "hub.db-wal", "hub.db-shm"):
        (data / name).write_bytes(b"")
    for path in (data, *data.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    caplog.set_level(logging.WARNING, logger="hub.filemodes")
    settings = embedded(data)
    migrate(settings)
    assert mode(data) == 0o700
    for name in ("secret_key", "encryption_key", "hub.db", "hub.db-wal", "hub.db-shm"):
        assert mode(data / name) == 0o600, name
        assert any(str(data / name) in r.getMessage() for r in caplog.records), name
    assert "now 600" in caplog.text and "mode 644" in caplog.text
    caplog.clear()
    migrate(embedded(data))  # nothing more to say
    assert not caplog.records


def test_a_database_elsewhere_leaves_its_directory_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    url = f"sqlite+aiosqlite:///{shared / 'hub.db'}"
    settings = Settings.from_env(
        {
            "HUB_SECRET_KEY": "k" * 40,
            "HUB_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "HUB_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": url,
        }
    )
    migrate(settings)
    assert mode(shared) == 0o755 and mode(shared / "hub.db") == 0o600
