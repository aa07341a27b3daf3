"""The lock files (requirements/*.lock, written by scripts/lock) agree with pyproject.toml:
every declared dependency is pinned at a version it allows, every pin has its hashes, and
the tests' lock runs the runtime lock's versions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parent.parent


def lockcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lockcheck", ROOT / "scripts/lib/lockcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lockcheck", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("lock", "extras"), [("runtime", ()), ("test", ("test",))])
def test_the_lock_pins_every_declared_dependency_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    check = lockcheck()
    assert check.problems(ROOT / "requirements" / f"{lock}.lock", extras) == [], "run scripts/lock"


def test_the_test_lock_runs_the_runtime_versions() -> None:
    check = lockcheck()
    runtime = check.pins(ROOT / "requirements/runtime.lock")
    test = check.pins(ROOT / "requirements/test.lock")
    assert {name: test.get(name) for name in runtime} == runtime


def test_a_lock_missing_a_dependency_or_a_hash_is_caught(tmp_path: Path) -> None:
    check = lockcheck()
    text = (ROOT / "requirements/runtime.lock").read_text()
    start = text.index("\nstarlette==")
    end = text.index("\n", text.index("# via", start))
    without = tmp_path / "without.lock"
    without.write_text(text[:start] + text[end:] + "\nsix==1.16.0\n")
    wrong = check.problems(without)
    assert any("'starlette>=" in w and "not pinned" in w for w in wrong), wrong
    assert any("no hashes" in w and "six==1.16.0" in w for w in wrong), wrong
    old = tmp_path / "old.lock"
    old.write_text(text.replace("\nhttpx==", "\nhttpx==0.1.0 \\\n    # was httpx==", 1))
    assert any("httpx==0.1.0 is pinned" in w for w in check.problems(old))


def test_the_locks_name_no_package_index() -> None:
    for lock in (ROOT / "requirements").glob("*.lock"):
        text = lock.read_text()
        assert "://" not in text and "--index-url" not in text, lock


def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts/lib/audit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("audit", module)
    spec.loader.exec_module(module)
    return module


def test_the_audit_fails_on_a_vulnerability_and_says_how_to_go_on() -> None:
    vuln = {
        "id": "PYSEC-2099-1",
        "fix_versions": ["2.0.1"],
        "aliases": ["CVE-2099-0001"],
        "description": "A crafted header crashes the parser.",
    }
    report = {
        "dependencies": [
            {"name": "httpx", "version": "2.0.0", "vulns": [vuln]},
            {"name": "starlette", "version": "1.0.0", "vulns": []},
        ]
    }
    result = audit().verdict(report)
    assert result.failed
    text = "\n".join(result.lines)
    assert "VULNERABLE httpx==2.0.0: PYSEC-2099-1 (CVE-2099-0001); fixed in: 2.0.1." in text
    assert "requirements/audit-ignore.txt" in text


def test_the_audit_says_plainly_when_nothing_could_be_checked() -> None:
    skipped = {"skip_reason": "Dependency not found on PyPI and could not be audited"}
    nothing = audit().verdict(
        {"dependencies": [{"name": "six", **skipped}, {"name": "httpx", **skipped}]}
    )
    assert not nothing.failed
    assert nothing.lines == [
        "scripts/audit: the vulnerability database answered for none of the 2 locked packages "
        "(it cannot be reached from here): NOTHING WAS AUDITED."
    ]
    clean = audit().verdict({"dependencies": [{"name": "six", "version": "1", "vulns": []}]})
    assert not clean.failed
    assert clean.lines == ["scripts/audit: no known vulnerability in 1 locked packages."]


def test_an_ignored_vulnerability_needs_its_reason() -> None:
    text = "# comment\nPYSEC-2099-1  the hub never parses that header  # since 2099\n"
    assert audit().ignored(text) == {"PYSEC-2099-1": "the hub never parses that header"}
    with pytest.raises(ValueError, match="needs its reason"):
        audit().ignored("GHSA-xxxx-yyyy-zzzz\n")
    assert audit().ignored((ROOT / "requirements/audit-ignore.txt").read_text()) == {}
