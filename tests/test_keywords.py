"""A rule's keywords match what a person wrote without regard to case or diacritics, in Turkish
as in English (hub/automation/keywords.py), and the rule conditions use that match."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.automation import rules
from hub.automation.keywords import contains, fold

pytestmark = pytest.mark.unit

TURKISH_AND_ENGLISH = (
    "abcçdefgğhıijklmnoöpqrsştuüvwxyzABCÇDEFGĞHIİJKLMNOÖPQRSŞTUÜVWXYZ0123456789 ,.!?"
)
texts = st.text(alphabet=TURKISH_AND_ENGLISH, max_size=40)


@pytest.mark.parametrize(
    ("written", "keyword"),
    [
        ("FİYAT nedir?", "fiyat"),  # dotted capital İ
        ("FIYAT nedir?", "fiyat"),  # ASCII capital I, as a phone without Turkish keys types it
        ("fıyatı ne kadar", "fiyat"),  # dotless i
        ("Fiyat", "FİYAT"),  # the keyword written in capitals
        ("İNDİRİM var mı", "indirim"),
        ("Şeker gibi", "seker"),
        ("ÇOK güzel", "cok"),
        ("Ödeme nasıl", "odeme"),
        ("ÜRÜN elinize ulaştı mı", "urun"),
        ("Kargo DAĞITIMDA", "dagitim"),
        ("ulaştı", "ULAŞTI"),
        ("How much is the PRICE?", "price"),
        ("café au lait", "cafe"),
        ("Kargolar ne zaman?", "kargo"),  # a keyword inside a word
        ("fiyat  \n bilgisi", "fiyat bilgisi"),  # any run of spaces is one
    ],
)
def test_keywords_match_whatever_the_case_and_diacritics(written: str, keyword: str) -> None:
    assert contains(written, [keyword])


@pytest.mark.parametrize(
    ("written", "keyword"),
    [("Merhaba", "fiyat"), ("price", "prize"), ("kargo", "kargolar"), ("anything", "   ")],
)
def test_other_words_do_not_match(written: str, keyword: str) -> None:
    assert not contains(written, [keyword])


def test_the_four_turkish_is_fold_to_one() -> None:
    assert {fold(c) for c in "İIıi"} == {"i"}
    assert fold("ŞşÇçÖöÜüĞğ") == "ssccoouugg"


@given(st.text())
def test_folding_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(texts)
def test_case_never_matters(text: str) -> None:
    assert fold(text.upper()) == fold(text) == fold(text.lower())


@given(texts, st.data())
def test_any_part_of_a_text_is_found_in_it(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    part = text[start:end]
    assert contains(text, [part]) == bool(fold(part))
    assert contains(text.upper(), [part.lower()]) == bool(fold(part))


def test_a_rule_condition_folds_its_values_and_the_post_is_matched_exactly() -> None:
    facts = rules.Facts(channel_id="c", channel_kind="instagram", text="FİYAT?", post_id="178")
    said = {"field": "text", "op": "contains", "values": ["fiyat"]}
    unsaid = {"field": "text", "op": "not_contains", "values": ["Fiyat"]}
    post = {"field": "post", "op": "in", "values": ["178"]}
    other_post = {"field": "post", "op": "in", "values": ["1789"]}
    assert rules.evaluate([said, unsaid, post, other_post], facts) == [True, False, True, False]
