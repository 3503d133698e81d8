"""Issue 10, proof: property-based tests (hypothesis) for every parser of user text.

For each parser - amounts (assistant/thresholds.py), e-mail and phone in a hand-over's contact answer
(actions/actions.py), query rewriting and the question focus (index/query.py), language detection
(assistant/language.py, and the guard's cheap guess) and the guard's message check - any input up
to 100 KB returns without raising in under TIME_LIMIT, measured per example with perf_counter; plus
what each must get right on well-formed input.

Inputs up to 100 KB are built by repeating a drawn piece (hostile ones included: digit runs, digit
groups, '@' and dots, sentence ends) to a drawn length, so hypothesis does not have to draw 100 KB
itself. An example over the limit is measured again, up to five times, and the best time counts (the
machine is shared: a quadratic parser is slow every time, a descheduled one only now and then).
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

# Issue 10 asks for under 50 ms on any input up to 100 KB, and that is the bound (wall time, best of up
# to five tries, because CI shares two cores with other work: a descheduled call is slow only now and
# then, a parser that backtracks or reads all of 100 KB is slow every time, 60 ms to 15 s). Measured on
# the worst inputs here, best of five: under 15 ms idle and under 15 ms with a whole stack starting
# beside it (load 3.5 on 2 cores), while single tries reached 140 ms there.
TIME_LIMIT = 0.050
MAX_INPUT = 100_000

FAST = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])
LONG = settings(FAST, max_examples=25)

HOSTILE_PIECES = ["1", "0", "9" * 20, "1 000", "1,000", "1.000", ",", ".", " ", "\u00a0", "\u202f", "kr", " mkr",
                  "miljoner", "k", ":-", "@", "a@b", ".se", "-", "+", "+46", "?", "!", ". ", "\n", "år 2025",
                  "iop", "lou", "Vad är IOP? ", "What is ", "och ", "the ", "å", "ä", "ö", "é", "\u0301", "😀",
                  "<script>", "\x00", "\t"]
piece = st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=30))
unit = st.lists(piece, min_size=1, max_size=12).map("".join).filter(bool)


@st.composite
def user_text(draw, max_len: int = MAX_INPUT) -> str:
    """Any text a user could send, up to ``max_len`` characters: short and drawn as is, or a drawn
    piece repeated to a drawn length (long digit runs, many '@', many sentences …)."""
    if draw(st.booleans()):
        return draw(st.text(max_size=200))
    base = draw(unit)
    length = draw(st.one_of(st.integers(0, 2_000), st.integers(2_000, max_len), st.just(max_len)))
    return (base * (length // len(base) + 1))[:length]


def timed(fn, *args, cold=None):
    """``fn(*args)`` and its time; a call over the limit is repeated, the best time counts. ``cold``
    empties the parser's caches before each call (a repeat must not be faster for being warm)."""
    elapsed = math.inf
    for attempt in range(5):
        if cold:
            cold()
        start = time.perf_counter()
        out = fn(*args)
        elapsed = min(elapsed, time.perf_counter() - start)
        result = out if attempt == 0 else result
        if elapsed < TIME_LIMIT:
            break
    return result, elapsed


def fast(fn, text, *args, cold=None):
    result, elapsed = timed(fn, text, *args, cold=cold)
    assert elapsed < TIME_LIMIT, f"{getattr(fn, '__name__', fn)} took {elapsed * 1000:.0f} ms on {len(text)} chars"
    return result


# -- amounts ---------------------------------------------------------------------------------------
@LONG
@given(user_text())
@example("1" * 10_000 + "x")  # the attack: 10,000 digits froze every chat for 28 s
@example("1 " * 50_000)
@example("1,000" * 20_000)
def test_parse_amount_is_fast_and_total_on_any_text(text):
    from assistant.thresholds import parse_amount

    value = fast(parse_amount, text)
    assert value is None or (isinstance(value, float) and math.isfinite(value) and value >= 0)


@FAST
@given(st.integers(1, 10**12), st.sampled_from(["", " ", "\u00a0"]),
       st.sampled_from(["kr", "kronor", "SEK", ":-"]))
def test_amounts_in_kronor_are_read_exactly(n, gap, currency):
    from assistant.thresholds import format_kronor, parse_amount

    grouped = f"{n:,}".replace(",", " ")
    assert parse_amount(f"{n}{gap}{currency}") == n
    assert parse_amount(f"Vi ska köpa för {grouped} {currency} i år.") == n
    assert parse_amount(format_kronor(n)) == n
    if n >= 2100 or n < 1900:  # a bare year is not an amount
        assert parse_amount(str(n)) == n  # a bare number as the whole (form) answer


@FAST
@given(st.integers(1, 999), st.integers(0, 9))
def test_scaled_amounts(whole, tenth):
    from assistant.thresholds import parse_amount

    assert parse_amount(f"{whole},{tenth} miljoner") == pytest.approx((whole + tenth / 10) * 1e6)
    assert parse_amount(f"{whole} mkr") == whole * 1e6
    assert parse_amount(f"{whole} tkr") == whole * 1e3
    assert parse_amount(f"{whole}k") == whole * 1e3


# -- e-mail and phone in a contact answer ----------------------------------------------------------
def contact(text: str):
    from actions.actions import _EMAIL, _PHONE, CONTACT_CHARS

    text = text[:CONTACT_CHARS]
    return _EMAIL.search(text) or _PHONE.search(text)


@LONG
@given(user_text())
@example("a" * 40_000 + "@")
@example("a." * 50_000)
@example("1 " * 50_000)
def test_contact_extraction_is_fast_on_any_text(text):
    from actions.actions import _EMAIL, _PHONE

    fast(contact, text)
    # the patterns themselves stay linear even on the whole text (the action reads only its start)
    fast(_EMAIL.search, text)
    fast(_PHONE.search, text)


@LONG
@given(user_text())
@example("a" * 40_000 + "@")
@example("avbryt " * 20_000)
@example("1 " * 50_000)
def test_hand_over_readers_are_fast_on_any_text(text):
    """What the hand-over reads from a message (cancel, the summary's choice, a bare contact, the text
    without contacts for the language) returns in time on any input."""
    from assistant import handoff

    for reader in (handoff.is_cancel, handoff.choice, handoff.contact_only, handoff.find_contact,
                   handoff.without_contacts):
        fast(reader, text)


local_part = st.text("abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=30).filter(
    lambda s: s[0].isalnum())
label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum() and s[-1].isalnum())


@FAST
@given(local_part, st.lists(label, min_size=1, max_size=3), st.sampled_from(["se", "com", "nu"]),
       st.sampled_from(["", "Min e-post är ", "Nå mig på: "]), st.sampled_from(["", " tack", ".", " eller ring"]))
def test_an_email_in_a_contact_answer_is_found_whole(local, labels, tld, before, after):
    address = f"{local}@{'.'.join(labels)}.{tld}"
    found = contact(f"{before}{address}{after}")
    assert found and found.group(0) == address


@FAST
@given(st.sampled_from(["070", "+46 70", "08", "+4670"]), st.lists(st.text("0123456789", min_size=2, max_size=3),
                                                                      min_size=2, max_size=4),
       st.sampled_from([" ", "-", ""]))
def test_a_phone_number_in_a_contact_answer_is_found(prefix, groups, sep):
    number = prefix + sep + sep.join(groups)
    digits = sum(c.isdigit() for c in number)
    assume(8 <= digits <= 20 and len(number) <= 20)
    found = contact(f"Ring mig på {number} efter lunch")
    assert found and found.group(0).strip() == number


# -- query rewriting and the question focus --------------------------------------------------------
@pytest.fixture(scope="module")
def rewriter():
    from index.query import QueryRewriter

    return QueryRewriter(["Ett idéburet offentligt partnerskap (IOP) är en samverkansform.",
                          "Direktupphandling får användas när värdet är lågt.", "Sociala företag och föreningar."])


UNIQUE_WORDS = "".join("".join(chr(0x61 + i // 26 ** k % 26) for k in range(5)) + " " for i in range(16_666))


def forget_word_frequencies():
    """Empty the word-frequency caches: every word is looked up afresh, as for words nobody sent before."""
    import wordfreq

    from assistant.language import _lean
    from index.lexicon import zipf

    _lean.cache_clear()
    zipf.cache_clear()
    wordfreq._wf_cache.clear()


@LONG
@given(text=user_text())
@example(text="Vad är IOP? " * 8_000)
@example(text="iop lou " * 12_500)
@example(text=UNIQUE_WORDS)  # 16,666 different words
def test_query_rewriting_is_fast_and_keeps_the_question(rewriter, text):
    out = fast(rewriter.rewrite, text, cold=forget_word_frequencies)
    # the original keeps the text (acronyms upper-cased for the tokenizer), the keyword query starts with
    # the rewritten text
    assert out.original.lower() == text[:len(out.original)].lower()
    base = out.original if out.english else out.dense
    assert out.lexical.strip().startswith(base.strip())


@LONG
@given(user_text())
@example("Hej. " * 20_000)
@example("Vi är en förening. " * 5_000 + "Kan vi teckna IOP?")
def test_question_focus_is_fast_and_part_of_the_message(text):
    from index.query import question_focus

    focus = fast(question_focus, text)
    if focus is not None:
        assert focus and len(focus) < len(text.strip())


@FAST
@given(st.lists(st.sampled_from(["Vi är en förening i Gävle.", "Vi har tio anställda.", "Det är bra."]),
                min_size=10, max_size=20), st.sampled_from(["Kan vi teckna ett IOP?", "Gäller LOU för oss?"]))
@example(["Det är bra."] * 10, "Gäller LOU för oss?")  # the shortest: 139 characters, a "long" message
def test_the_focus_is_the_question_at_the_end(context, question):
    # (min_size was 8: eight "Det är bra." and the question are 118 characters, which question_focus
    # rightly leaves alone as a short message (FOCUS_MIN_CHARS = 120); hypothesis found it now and then.)
    from index.query import question_focus

    assert question_focus(" ".join(context) + " " + question) == question


# -- language detection ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wordfreq_loaded():
    """wordfreq reads its word lists on first use (once per process, before any user's message)."""
    from assistant.language import detect_language

    detect_language("hello hej")


@LONG
@given(user_text(), st.sampled_from([None, "sv", "en", "fr"]))
@example(UNIQUE_WORDS, None)  # 16,666 different words
def test_language_detection_is_fast_and_answers_sv_or_en(wordfreq_loaded, text, previous):
    from assistant.language import detect_language

    assert fast(detect_language, text, previous, cold=forget_word_frequencies) in ("sv", "en")


@FAST
@given(st.text(st.characters(blacklist_categories=("Lu", "Ll", "Lt", "Lm", "Lo")), max_size=500),
       st.sampled_from(["sv", "en"]))
def test_without_words_the_conversations_language_stays(text, previous):
    from assistant.language import detect_language

    assert detect_language(text, previous) == previous


@FAST
@given(st.sampled_from(["What is an IOP and how do we sign one?", "Can we use direct award for this?"]),
       st.sampled_from(["Vad är ett IOP och hur tecknar vi ett?", "Får vi direktupphandla det här?"]))
def test_clear_sentences_get_their_language(english, swedish):
    from assistant.language import detect_language

    assert detect_language(english) == "en" and detect_language(swedish, "en") == "sv"


@LONG
@given(user_text())
def test_the_guards_language_guess_is_fast(text):
    from assistant import guard

    assert isinstance(fast(guard.looks_english, text), bool)


# -- the guard's message check --------------------------------------------------------------------
any_value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=50),
                      st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                   max_size=3))
surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)


@LONG
@given(st.one_of(user_text(), any_value, st.tuples(user_text(2_000), surrogates).map("".join)),
       st.sampled_from([1, 500, 2000, 100_000]))
@example("x" * 100_000, 2000)
@example("\ud800", 2000)
def test_check_message_is_fast_total_and_exact(text, limit):
    from assistant import guard

    refusal = fast(guard.check_message, text, limit) if isinstance(text, str) else guard.check_message(text, limit)
    if not isinstance(text, str):
        assert refusal is not None and refusal.reason == "not_text"
        return
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    should_pass = len(text) <= limit and encodable and bool(text.strip())
    assert (refusal is None) == should_pass, (len(text), limit, refusal)
    if refusal is not None:
        assert refusal.reason in ("too_long", "bad_unicode", "empty") and refusal.text and refusal.language in ("sv", "en")
        assert refusal.reason != "too_long" or len(text) > limit


@LONG
@given(user_text(), st.sampled_from([None, "greet", "thank", "goodbye", "bot_challenge"]))
@example("vad " * 25_000, "bot_challenge")
@example("? " * 50_000, None)
@example("Hej, vad är IOP?" + "…" * 50_000, "greet")
def test_small_talk_routing_is_fast_and_total_on_any_text(text, intent):
    """Whether small talk asks something (actions.asks_something, read on every greeting, thanks or
    "are you a bot") returns a bool in time on any input."""
    from actions.actions import asks_something

    assert fast(asks_something, text, intent) in (True, False)
