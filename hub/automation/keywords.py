"""Matching a rule's keywords in what a person wrote, the way a seller means them: without
regard to case or diacritics, in Turkish as in English.

`fold` (`hub.search.folding`, which search shares for the same reasons) maps a text to a
form in which "Fiyat", "FİYAT", "fıyat" and "fiyat" are one, and so are "Şeker"/"seker",
"çok"/"cok", "Ödeme"/"odeme", "ürün"/"urun", "dağ"/"dag". Turkish has two i's:
dotted (İ, i) and dotless (I, ı). Case rules alone cannot fold them both ways (Python lowers
"I" to "i" and "İ" to "i̇", and leaves "ı" apart), and sellers do not type them consistently,
so all four fold to "i". The cost, a Turkish "kıl" matching "kil", is one a keyword search
accepts; missing "FİYAT" in a message is not.

Then every combining mark is dropped after Unicode decomposition (NFKD), so "é", "ñ", "ş"
fold to their letter, and whitespace runs become one space. `contains` matches a keyword as
a substring of the folded text, as a person searching would expect ("kargo" in
"Kargolar ne zaman?").
"""  # noqa: RUF002 (the dotless i is the point)

from __future__ import annotations

from collections.abc import Iterable

from hub.search.folding import fold

__all__ = ["contains", "fold"]


def contains(text: str, keywords: Iterable[str]) -> bool:
    """Whether any keyword (folded) is in the text (folded)."""
    haystack = fold(text)
    return any((needle := fold(k)) and needle in haystack for k in keywords)
