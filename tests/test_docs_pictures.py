"""The documentation's pictures are the tests' own: every `img/<name>.png` a page under docs/
shows is in docs/img, and each screen picture is one a browser test takes with
`browserkit.screenshot(page, "<name>")` (scripts/screenshots makes them anew), so a picture
cannot outlive the screen it shows without this test saying so."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Pictures drawn by a benchmark rather than photographed by a test.
PLOTS = {"fanout", "growth"}
SHOWN = re.compile(r"\]\(img/([\w.-]+)\.png\)")
TAKEN = re.compile(r"screenshot\(\s*\w+,\s*f?\"([\w-]+)\"")


def shown() -> dict[str, str]:
    found = {}
    for page in sorted(DOCS.glob("*.md")):
        for name in SHOWN.findall(page.read_text()):
            found[name] = page.name
    return found


def taken() -> set[str]:
    names: set[str] = set()
    for test in (ROOT / "tests").glob("test_*.py"):
        names.update(TAKEN.findall(test.read_text()))
    return names


def test_every_picture_shown_is_there() -> None:
    missing = {
        name: page for name, page in shown().items() if not (DOCS / "img" / f"{name}.png").is_file()
    }
    assert not missing, f"docs show pictures that docs/img lacks: {missing}"


def test_every_screen_picture_is_taken_by_a_test() -> None:
    stale = {name: page for name, page in shown().items() if name not in taken() | PLOTS}
    assert not stale, f"no browser test photographs these (run scripts/screenshots): {stale}"


def test_the_inbox_guide_shows_its_screens() -> None:
    assert len([p for p in shown().values() if p == "inbox.md"]) >= 5
