"""Word knowledge used to repair extracted text: is this a Swedish word, and how common is it.

Backed by wordfreq's Swedish frequency list (shipped inside the package, no download). Lookups
are cached; nothing is loaded until the first call.
"""

from __future__ import annotations

from functools import lru_cache

LANG = "sv"


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    """Zipf frequency of ``word`` in Swedish (0 = unknown, 7 = "och"); case-insensitive."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word.lower(), LANG)


@lru_cache(maxsize=50_000)
def repair_ligature(word: str) -> str:
    """Undo a dropped "fi" ligature ("fnns" -> "finns", "defnition" -> "definition").

    Only rare words are touched, and only when inserting an "i" after an "f" gives a word that is
    far more common; the case of the first letter is kept.
    """
    lower = word.lower()
    if "f" not in lower or not lower.isalpha():
        return word
    base = zipf(lower)
    if base >= 3.0:
        return word
    best, best_z = word, base
    for i, ch in enumerate(lower):
        if ch != "f" or lower[i + 1 : i + 2] == "i":
            continue
        candidate = lower[: i + 1] + "i" + lower[i + 1 :]
        z = zipf(candidate)
        if z > best_z:
            best, best_z = candidate, z
    if best is word or best_z < 2.5 or best_z < base + 1.5:
        return word
    return best[0].upper() + best[1:] if word[0].isupper() else best


def is_word(word: str, threshold: float = 2.0) -> bool:
    return zipf(word) >= threshold


def should_join(left: str, right: str, at_line_end: bool, seen: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether ``left right`` is one word split in two ("upphand" + "lingen").

    Real word pairs must stay apart: the joined form has to be a known word, a short very common
    word followed by a common word is kept apart ("en del", "av gift", "all tid"), and the joined
    word must not be much rarer than its rarer part. A split at a line end is more likely than one
    inside a line, so the margin is wider there. ``seen`` holds words the document itself spells
    whole, which count as known.
    """
    if not (left.isalpha() and right.isalpha()) or not right[0].islower():
        return False
    if len(left) < 2 or len(right) < 2 and not at_line_end:
        return False
    joined = repair_ligature((left + right).lower())
    z_joined = zipf(joined)
    z_left, z_right = zipf(left), zipf(right)
    if len(left) <= 3 and z_left >= 5.0 and z_right >= 3.0:
        return False  # "en del", "av gift", "all tid"
    if z_right >= 6.0 or (z_left >= 6.0 and z_right >= 4.5):
        return False  # "fram för", "till exempel": the right part is a function word
    if joined in seen:
        return True
    if z_joined < 1.0:
        return False
    margin = 2.0 if at_line_end else 1.2
    return z_joined + margin >= min(z_left, z_right)
