"""Files that hold secrets or personal data are readable by their owner only: the SQLite
database (SQLite gives its `-wal` and `-shm` files the database file's mode), the generated
secret and encryption keys and the demo's credentials, each 0600, in a data directory that is
0700. Whatever the umask says; and a file or directory found wider than that, left by an
older version or copied in, is tightened, with a warning that says so."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

log = logging.getLogger("hub.filemodes")


def private_dir(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """`path` exists (empty if it was missing) and is readable by its owner only."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    tighten(path, PRIVATE_FILE)


def tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        path.chmod(current & mode)
        log.warning(
            "%s was open to other users (mode %03o); it is now %03o, its owner's only.",
            path,
            current,
            current & mode,
        )
