"""The fold search shares between write time and query time (hub/search/folding.py), and the
inbox's highlighter (hub/static/search-highlight.js) that must find the same matches in the
original text, run in node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.search.folding import SEPARATOR, fold, folded, substring_pattern

pytestmark = pytest.mark.unit

HIGHLIGHT = Path(__file__).resolve().parent.parent / "hub" / "static" / "search-highlight.js"
TURKISH_AND_ENGLISH = (
    "abcçdefgğhıijklmnoöpqrsştuüvwxyzABCÇDEFGĞHIİJKLMNOÖPQRSŞTUÜVWXYZ0123456789 ,.!?"
)
texts = st.text(alphabet=TURKISH_AND_ENGLISH, max_size=40)

PAIRS = [  # (written, searched): each Turkish pair both ways, and the brief's own examples
    ("İSTANBUL", "istanbul"),
    ("Istanbul", "istanbul"),
    ("istanbul", "İSTANBUL"),
    ("şikayet", "sikayet"),
    ("ŞİKAYET", "şikayet"),
    ("ışık", "ISIK"),
    ("IŞIK", "ışık"),
    ("Çiçek", "cicek"),
    ("ÇİÇEK", "çiçek"),
    ("Ödeme", "odeme"),
    ("ÖDEME", "ödeme"),
    ("Ürün", "urun"),
    ("ÜRÜN", "ürün"),
    ("Dağ", "DAG"),
    ("DAĞ", "dağ"),
    ("café", "CAFE"),
]


@pytest.mark.parametrize(("written", "searched"), PAIRS)
def test_each_turkish_pair_folds_to_one(written: str, searched: str) -> None:
    assert fold(written) == fold(searched)
    assert fold(searched) in (folded(f"Bir {written} notu") or "")


def test_the_fold_of_each_letter() -> None:
    assert fold("İIıi Şş Çç Öö Üü Ğğ") == "iiii ss cc oo uu gg"
    assert fold("  çok\t\n  güzel ") == "cok guzel"  # whitespace runs are one space
    assert fold("s\u0327ikayet") == "sikayet"  # a decomposed ş as a composed one
    assert fold("Straße") == "strasse"


def test_a_row_folds_its_parts_apart_and_nothing_is_none() -> None:
    assert folded("Fatura", None, "fatura.pdf") == "fatura" + SEPARATOR + "fatura.pdf"
    assert folded(None, "", "  ") is None
    # a query never spans two parts: it holds no separator once folded
    assert SEPARATOR not in fold("Fatura\nfatura.pdf")


def test_the_pattern_escapes_like_wildcards() -> None:
    assert substring_pattern("100%_İndirim\\") == "%100\\%\\_indirim\\\\%"


@given(texts)
def test_the_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(texts, texts, texts)
def test_what_is_written_is_found_however_it_is_cased(before: str, word: str, after: str) -> None:
    written = before + word + after
    for variant in (word.upper(), word.lower(), word.casefold()):
        assert fold(variant) in fold(written) or not fold(variant).strip()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=20))
def test_the_highlighter_marks_what_the_server_matched(cases: list[tuple[str, str]]) -> None:
    cases = [*cases, *PAIRS, ("Bir İSTANBUL şubesi", "istanbul"), ("ışık ve IŞIK", "isik")]
    got = _highlights(cases)
    for (text, query), ranges in zip(cases, got, strict=True):
        needle = fold(query)
        if not needle:
            assert ranges == []
            continue
        # every marked range folds to a text holding the query, and the marks are found
        # exactly when the server would match
        assert bool(ranges) == (needle in fold(text))
        for start, end in ranges:
            assert needle in fold(_utf16_slice(text, start, end))


def _highlights(cases: list[tuple[str, str]]) -> list[list[list[int]]]:
    script = (
        f"import {{ matches }} from {json.dumps(HIGHLIGHT.as_uri())};"
        "const cases = JSON.parse(require_input);"
        "console.log(JSON.stringify(cases.map(([t, q]) => matches(t, q))));"
    ).replace("require_input", "process.argv[1]")
    found = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(cases)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return list(json.loads(found.stdout))


def _utf16_slice(text: str, start: int, end: int) -> str:
    units = text.encode("utf-16-le")
    return units[start * 2 : end * 2].decode("utf-16-le")
