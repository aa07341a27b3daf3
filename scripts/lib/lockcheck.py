#!/usr/bin/env python3
"""Whether a lock file pins every dependency pyproject.toml declares, at a version the
declaration allows (scripts/lock writes the locks; tests/test_lock.py and scripts/lib/venv.sh
run this).

    scripts/lib/lockcheck.py requirements/test.lock test   # exits 1 and says what is off
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LOCKS = ROOT / "requirements"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
_DECLARED = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(extras: tuple[str, ...] = ()) -> list[str]:
    """pyproject.toml's dependencies, and those of the extras named."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def pins(lock: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, version in _PIN.findall(lock.read_text()):
        found.setdefault(canonical(name), []).append(version)
    return found


def problems(lock: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """What is wrong, one sentence each; empty when the lock agrees with pyproject.toml."""
    if not lock.exists():
        return [f"{lock.relative_to(ROOT)} is missing"]
    locked = pins(lock)
    text = lock.read_text()
    wrong: list[str] = []
    for requirement in declared(extras):
        match = _DECLARED.match(requirement)
        assert match, requirement
        name, spec = canonical(match[1]), match[3]
        if name not in locked:
            wrong.append(f"{requirement!r} is declared but not pinned")
            continue
        bounds = re.findall(r"(>=|==)\s*([0-9][0-9A-Za-z.]*)", spec)
        for version in locked[name]:
            for op, bound in bounds:
                below = op == ">=" and _key(version) < _key(bound)
                if below or (op == "==" and version != bound):
                    wrong.append(f"{requirement!r} is declared but {name}=={version} is pinned")
    pinned_lines = [line for line in text.splitlines() if _PIN.match(line)]
    unhashed = [line for line in pinned_lines if not line.rstrip().endswith("\\")]
    if unhashed:
        wrong.append(f"{len(unhashed)} pins have no hashes (the first: {unhashed[0].strip()})")
    return wrong


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:4])


def main(argv: list[str]) -> int:
    lock, extras = Path(argv[1]).resolve(), tuple(e for e in argv[2:] if e)
    wrong = problems(lock, extras)
    for sentence in wrong:
        print(f"{lock.relative_to(ROOT)}: {sentence}", file=sys.stderr)
    if wrong:
        print("Run scripts/lock to bring the lock files up to date.", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
