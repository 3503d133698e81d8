"""Which language to answer in: Swedish or English, from the words of the message.

Word frequencies (wordfreq) in each language decide; messages too short or too mixed to tell
keep the language of the conversation so far (Swedish by default).
"""

from __future__ import annotations

import re
from functools import lru_cache

SWEDISH, ENGLISH = "sv", "en"
LANGUAGES = (SWEDISH, ENGLISH)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_MARGIN = 1.5  # summed zipf difference needed before a message counts as one language
MAX_LANGUAGE_CHARS = 2000  # the language of a message is read from its start: bounded time on any input
# Chat words that are frequent in Swedish text too but, alone in a message, mean English.
_ENGLISH_CHAT = frozenset({"hello", "hi", "hey", "thanks", "thank", "bye", "goodbye", "please", "yes", "no", "sure",
                           "human", "cancel", "help", "more"})  # "human" alone got the Swedish hand-over (session 26)


@lru_cache(maxsize=20000)
def _lean(word: str) -> float:
    """Positive for English words, negative for Swedish ones, 0 for shared or unknown words."""
    from wordfreq import zipf_frequency

    if any(c in "åäö" for c in word):
        return -3.0
    if word in _ENGLISH_CHAT:
        return 2.0
    en, sv = zipf_frequency(word, "en"), zipf_frequency(word, "sv")
    return max(-3.0, min(3.0, en - sv))


def detect_language(text: str, previous: str | None = None) -> str:
    fallback = previous if previous in LANGUAGES else SWEDISH
    words = [w.lower() for w in _WORD.findall((text or "")[:MAX_LANGUAGE_CHARS])]
    if not words:
        return fallback
    lean = sum(_lean(w) for w in words)
    if lean >= _MARGIN:
        return ENGLISH
    if lean <= -_MARGIN:
        return SWEDISH
    return fallback
