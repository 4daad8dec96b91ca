"""Name search of the mock: accent- and case-insensitive prefix match from any word on.

A name's search key is its Vietnamese name folded (no diacritics, `đ` → `d`, case-folded,
single spaces) with the branch and legal-form prefixes removed ("CHI NHÁNH CÔNG TY TNHH
HOÀNG PHÁT TẠI …" → "hoang phat tai …"). A query matches when, folded the same way (and
with a legal form it starts with removed), it is a prefix of the key or of the key from any
later word on. The index holds every such suffix in sorted order, so a query is one binary
search plus the matches.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence

from mocks.business_registration._vocab import BRANCH_PREFIX, LEGAL_FORMS
from mocks.business_registration.data import Enterprise

__all__ = ["NameIndex", "fold", "strip_legal_form"]


def fold(text: str) -> str:
    """Lower-case ASCII letters and single spaces: "Công ty  ĐẠI" → "cong ty dai"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(plain.casefold().split())


# Longest first, so "cong ty tnhh mot thanh vien" wins over "cong ty tnhh".
_FORM_PREFIXES = sorted((fold(form[2]) + " " for form in LEGAL_FORMS), key=len, reverse=True)
_BRANCH = fold(BRANCH_PREFIX) + " "


def strip_legal_form(folded: str) -> str:
    """A folded name without its leading "chi nhanh" and legal form."""
    folded = folded.removeprefix(_BRANCH)
    for prefix in _FORM_PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


class NameIndex:
    """Sorted word-start suffixes of every enterprise's search key."""

    def __init__(self, enterprises: Sequence[Enterprise]) -> None:
        keyed = sorted(enterprises, key=lambda e: (strip_legal_form(fold(e.name)), e.code))
        self._ordered = tuple(keyed)
        entries: list[tuple[str, int]] = []
        for rank, enterprise in enumerate(keyed):
            words = strip_legal_form(fold(enterprise.name)).split(" ")
            entries += [(" ".join(words[i:]), rank) for i in range(len(words))]
        entries.sort()
        self._suffixes = [suffix for suffix, _ in entries]
        self._ranks = [rank for _, rank in entries]

    def search(self, query: str) -> list[Enterprise]:
        """Every match, ordered by search key then code; [] for an empty query."""
        prefix = strip_legal_form(fold(query))
        if not prefix:
            return []
        ranks: set[int] = set()
        start = bisect.bisect_left(self._suffixes, prefix)
        for position in range(start, len(self._suffixes)):
            if not self._suffixes[position].startswith(prefix):
                break
            ranks.add(self._ranks[position])
        return [self._ordered[rank] for rank in sorted(ranks)]
