#!/usr/bin/env python3
"""The dependency audit behind scripts/audit: pip-audit checks every pin of
requirements/test.lock (the runtime lock's pins and the tests') against the Python Packaging
Advisory Database, through PyPI's JSON API.

A known vulnerability fails it with a report, unless its id is listed in
requirements/audit-ignore.txt with the reason it does not apply. A database that cannot be
reached, or that does not know the packages (a mirror that serves the packages but not the
JSON API), is no failure: the audit says plainly that nothing, or what, was not checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LOCK = ROOT / "requirements" / "test.lock"
IGNORE = ROOT / "requirements" / "audit-ignore.txt"
UNREACHABLE = ("ConnectionError", "ConnectTimeout", "ReadTimeout", "NameResolutionError")


@dataclass(frozen=True)
class Verdict:
    failed: bool
    lines: list[str]


def ignored(text: str) -> dict[str, str]:
    """Vulnerability id -> why it does not apply, one `ID  reason` a line; # starts a comment."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        vuln, _, reason = line.partition(" ")
        if not reason.strip():
            raise ValueError(f"{IGNORE.name} line {number}: {vuln} needs its reason after it")
        found[vuln] = reason.strip()
    return found


def verdict(report: dict[str, object]) -> Verdict:
    """What pip-audit's JSON report says, for a person."""
    deps = [d for d in report.get("dependencies", []) if isinstance(d, dict)]  # type: ignore[attr-defined]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    found = [(d, v) for d in audited for v in d.get("vulns", [])]
    lines: list[str] = []
    for dep, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
        aliases = ", ".join(vuln.get("aliases") or [])
        lines.append(
            f"VULNERABLE {dep['name']}=={dep['version']}: {vuln['id']}"
            + (f" ({aliases})" if aliases else "")
            + f"; fixed in: {fixes}. {(vuln.get('description') or '').strip()[:300]}"
        )
    if found:
        lines.append(
            f"scripts/audit: {len(found)} known vulnerabilities in the locked dependencies. "
            "Upgrade (scripts/lock --upgrade-package NAME), or, if one does not apply to the "
            f"hub, list its id and the reason in requirements/{IGNORE.name}."
        )
    if not audited:
        lines.append(
            f"scripts/audit: the vulnerability database answered for none of the {len(deps)} "
            "locked packages (it cannot be reached from here): NOTHING WAS AUDITED."
        )
    elif skipped:
        names = ", ".join(sorted(str(d["name"]) for d in skipped))
        lines.append(
            f"scripts/audit: {len(skipped)} of {len(deps)} locked packages could not be "
            f"checked (unknown to the database): {names}."
        )
    if audited and not found:
        lines.append(f"scripts/audit: no known vulnerability in {len(audited)} locked packages.")
    return Verdict(bool(found), lines)


def main() -> int:
    try:
        skip = ignored(IGNORE.read_text() if IGNORE.exists() else "")
    except ValueError as exc:
        print(f"scripts/audit: {exc}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip_audit", "--disable-pip", "--no-deps", "-r", str(LOCK),
            "--progress-spinner", "off", "--desc", "on", "-f", "json", "-o", str(out),
            *(arg for vuln in skip for arg in ("--ignore-vuln", vuln)),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        report = json.loads(out.read_text()) if out.exists() and out.stat().st_size else None
    if report is None:
        if any(marker in done.stderr for marker in UNREACHABLE):
            last = done.stderr.strip().splitlines()[-1][:200]
            print(
                "scripts/audit: the vulnerability database could not be reached; "
                f"NOTHING WAS AUDITED ({last})."
            )
            return 0
        print(done.stdout + done.stderr, file=sys.stderr)
        print(f"scripts/audit: pip-audit failed (exit {done.returncode}).", file=sys.stderr)
        return 1
    result = verdict(report)
    print("\n".join(result.lines))
    for vuln, reason in skip.items():
        print(f"scripts/audit: ignoring {vuln}: {reason}")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
