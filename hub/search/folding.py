"""The one folding of text that search and keyword rules share: a text and a query are
compared in a form in which case and diacritics no longer count, in Turkish as in English.

`fold` maps "İSTANBUL", "Istanbul" and "istanbul" to "istanbul", "Şikayet" to "sikayet",
"IŞIK" and "ışık" to "isik", and likewise "Ç/ç", "Ö/ö", "Ü/ü", "Ğ/ğ". Turkish has two i's:
dotted (İ, i) and dotless (I, ı). Case rules alone cannot fold them both ways (Python lowers
"I" to "i" and "İ" to "i̇", and leaves "ı" apart), and people do not type them
consistently (a phone without a Turkish keyboard writes "sikayet" for "şikayet"), so all
four fold to "i". The cost, a Turkish "kıl" matching "kil", is one a search accepts;
missing "İSTANBUL" when looking for "istanbul" is not.

Then every combining mark is dropped after Unicode decomposition (NFKD), so "é", "ñ", "ş"
fold to their letter, and whitespace runs become one space. The fold is computed in Python
at write time (the `search` columns of messages and contacts) and at query time, so the
embedded SQLite and Postgres match exactly the same rows: no collation, `unaccent`
dictionary or database locale takes part. The inbox's highlighting (hub/static/search-
highlight.js) applies the same rules letter by letter to find the match in the original.
"""  # noqa: RUF002 (the dotless i is the point)

from __future__ import annotations

import re
import unicodedata

# Before case folding: the letters that casefold() would not bring together.
_DOTTED_I = str.maketrans({"\u0130": "i", "I": "i", "\u0131": "i"})  # İ, I, dotless i
_SPACE = re.compile(r"\s+")
# Joins the folded parts of one row: a folded text holds no newline (whitespace became a
# space), so a query never matches across two parts.
SEPARATOR = "\n"


def fold(text: str) -> str:
    return _SPACE.sub(" ", _step(_step(text))).strip()


def _step(text: str) -> str:
    # One pass is not always enough: compatibility forms decompose to capitals (a black-letter
    # H, U+210C, to "H"; a full-width I to "I") and case folding can yield decomposable
    # letters, so a second pass makes the fold idempotent.
    folded = unicodedata.normalize("NFKD", text.translate(_DOTTED_I).casefold())
    return "".join(c for c in folded if not unicodedata.combining(c)).translate(_DOTTED_I)


def folded(*parts: str | None) -> str | None:
    """What a row's `search` column holds: its parts folded, joined by SEPARATOR (None when
    there is nothing to find)."""
    kept = [f for p in parts if p and (f := fold(p))]
    return SEPARATOR.join(kept) or None


def substring_pattern(query: str) -> str:
    """A LIKE ... ESCAPE '\\' pattern matching rows whose folded text holds the folded query."""
    escaped = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped + "%"
