"""Query handling: how a typed question becomes what the retrievers search for.

People type fast: without å/ä/ö ("sociala foretag"), in chat Swedish ("nån", "funkar"), with
abbreviations ("iop", "lou"), or in English. ``QueryRewriter`` restores diacritics from the words
the corpus and the Swedish frequency list know, spells chat words out, and expands the domain's
abbreviations; English questions also get Swedish domain terms for the keyword index.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from .glossary import looks_english, swedish_terms
from .lexical import fold

WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)

CHAT_WORDS = {
    "nån": "någon", "nåt": "något", "nåra": "några", "nånting": "någonting", "nånstans": "någonstans",
    "funkar": "fungerar", "funka": "fungera", "funkat": "fungerat", "dom": "de", "mkt": "mycket",
    "ngn": "någon", "ngt": "något", "iaf": "i alla fall", "bara": "bara", "sån": "sådan", "sånt": "sådant",
    "såna": "sådana", "mej": "mig", "dej": "dig", "sen": "sedan", "o": "och", "pga": "på grund av",
    "tex": "till exempel", "t.ex": "till exempel", "osv": "och så vidare",
}

ABBREVIATIONS = {
    "iop": "IOP idéburet offentligt partnerskap",
    "lou": "LOU lagen om offentlig upphandling",
    "lov": "LOV lagen om valfrihetssystem",
    "svb": "särskild vinstutdelningsbegränsning",
    "ab svb": "aktiebolag med särskild vinstutdelningsbegränsning",
    "udd": "Upphandlingsdialog Dalarna",
    "skr": "Sveriges Kommuner och Regioner SKR",
    "dou": "direktupphandling",
}


ACRONYMS = ("iop", "lou", "lov", "luf", "eu", "skr", "udd", "svb", "ab", "esf", "sfs")
ACRONYM_RE = re.compile(r"(?<![\w-])(?:" + "|".join(ACRONYMS) + r")(?![\w])", re.IGNORECASE)


FOCUS_MIN_CHARS = 120  # shorter messages are searched as they are
# Bounded time on any input: the search accepts at most max_query_chars (500 by default, 10,000 at
# most), so longer text only reaches these functions from other callers; they read that much of it.
MAX_QUERY_TEXT = 10_000


def question_focus(text: str) -> str | None:
    """The question of a long message that first tells its situation ("Vi är en förening i Gävle
    som … Kan vi …?"): its last one or two sentences with a question mark, or else its last sentence.
    None when the message is short or is nothing but that sentence. The search embeds both the whole
    message and this focus and averages their similarities: the context keeps what kind of asker it
    is, the focus what is asked (on the persona question sets: hit@3 +0.02 on both, none lower)."""
    if len(text) <= FOCUS_MIN_CHARS:
        return None
    text = text[-MAX_QUERY_TEXT:]  # the question is at the end
    from .paragraphs import sentence_units

    sentences = sentence_units(text)
    asked = [s for s in sentences if "?" in s]
    focus = " ".join(asked[-2:]) if asked else (sentences[-1] if sentences else "")
    focus = focus.strip()
    return focus if focus and len(focus) < len(text.strip()) else None


@dataclass(frozen=True)
class RewrittenQuery:
    original: str
    dense: str
    lexical: str
    english: bool


class DiacriticRestorer:
    """Maps a word typed without diacritics to the spelling the corpus (or Swedish) uses."""

    def __init__(self, corpus_words: Counter[str]):
        best: dict[str, tuple[int, str]] = {}
        for word, count in corpus_words.items():
            key = fold(word)
            if key != word and count > best.get(key, (0, ""))[0]:
                best[key] = (count, word)
        self._corpus = {k: w for k, (_, w) in best.items()}
        self._known = set(corpus_words)

    @staticmethod
    @lru_cache(maxsize=1)
    def _swedish() -> dict[str, str]:
        from wordfreq import top_n_list

        out: dict[str, str] = {}
        for word in top_n_list("sv", 60_000):  # most frequent first: the first spelling wins
            key = fold(word)
            if key != word and key not in out:
                out[key] = word
        return out

    def restore(self, word: str) -> str:
        lower = word.lower()
        if lower in self._known or fold(lower) != lower:
            return word
        candidate = self._corpus.get(lower) or self._swedish().get(lower)
        if candidate is None:
            return word
        from .lexicon import zipf

        # "man" must not become "män": only replace words that are rare as typed
        if zipf(lower) >= 3.5 and lower not in self._corpus:
            return word
        return candidate if word.islower() else candidate.capitalize()


class QueryRewriter:
    def __init__(self, corpus_texts: list[str]):
        counts: Counter[str] = Counter()
        for text in corpus_texts:
            counts.update(w.lower() for w in WORD_RE.findall(text))
        self.restorer = DiacriticRestorer(counts)
        DiacriticRestorer._swedish()  # load the word list now, not during someone's first question

    def _swedish_rewrite(self, text: str) -> str:
        def word(m: re.Match[str]) -> str:
            w = self.restorer.restore(m.group(0))
            return CHAT_WORDS.get(w.lower(), w)

        return WORD_RE.sub(word, text)

    def rewrite(self, query: str) -> RewrittenQuery:
        query = query[:MAX_QUERY_TEXT]
        query = ACRONYM_RE.sub(lambda m: m.group(0).upper(), query)  # the tokenizer is case-sensitive
        english = looks_english(query)
        if english:
            extra = swedish_terms(query)
            return RewrittenQuery(query, query, f"{query} {extra}".strip(), True)
        text = self._swedish_rewrite(query)
        lowered = text.lower()
        expansions = [v for k, v in ABBREVIATIONS.items() if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", lowered)]
        lexical = " ".join([text, *expansions])
        return RewrittenQuery(query, text, lexical, False)
