"""Reading what a person writes while asking for a human: a contact (e-mail or phone), an explicit
cancel, and the choice at the summary (send / change the question / change the contact / cancel).

Only an explicit cancel cancels ("avbryt", "cancel", the button): a typo, a "nej" or "inte en adress"
is answered with a re-ask, never by dropping the request. Every pattern is bounded and applied to a
length-capped text, so each call is linear in its (capped) input.
"""

from __future__ import annotations

import re

CONTACT_CHARS = 500  # contact answers are read from their first 500 characters
CHOICE_CHARS = 80  # a choice or a cancel is a short message; longer ones are never read as one
CONTACT_ONLY_WORDS = 6  # a contact with at most this many other words is a contact, not a question

# Bounded and anchored at token starts: linear time on any input (an unbounded version took
# seconds on a 40,000-character message).
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,6}")
PHONE = re.compile(r"(?<![\d+])\+?\d[\d\s-]{6,18}\d")
_WORD = re.compile(r"[^\W_]{1,40}(?:-[^\W_]{1,40}){0,3}")

SEND, CHANGE_QUESTION, CHANGE_CONTACT, CANCEL = "send", "change_question", "change_contact", "cancel"

# Whole-message answers (after lower-casing and trimming punctuation). Button payloads are the titles
# in either language, so a click and the same words typed mean the same.
_CANCEL = frozenset({
    "avbryt", "avbryt tack", "nej avbryt", "avbryt förfrågan", "avbryt det", "jag vill avbryta", "glöm det",
    "strunta i det", "ångra", "cancel", "cancel it", "cancel please", "cancel the request", "no cancel",
    "forget it", "/cancel", "/deny", "sluta", "avsluta", "stopp", "stop", "quit", "never mind", "nevermind",
})
_SEND = frozenset({
    "skicka", "skicka till personalen", "skicka den", "skicka det", "skicka frågan", "skicka förfrågan", "ja", "ja skicka", "ja tack", "japp",
    "ok", "okej", "det stämmer", "stämmer", "ja det stämmer", "bekräfta", "send", "send to the staff", "send it", "yes", "yes send",
    "yes please", "confirm", "correct", "that's right", "thats right", "/affirm",
})
_CHANGE_QUESTION = frozenset({
    "ändra frågan", "ändra fråga", "ny fråga", "jag vill ändra frågan", "change the question", "change question",
    "edit the question", "edit question",
})
_CHANGE_CONTACT = frozenset({
    "ändra", "ändra kontaktuppgiften", "ändra kontaktuppgift", "ändra kontakt", "ändra e-postadressen",
    "ändra e-post", "ändra mejl", "ändra mejladressen", "ändra numret", "ändra telefonnumret", "change",
    "change the contact", "change contact", "change the contact details", "change my contact",
    "change the e-mail", "change the email", "change the number", "edit", "edit contact",
})


def _normal(text: str) -> str:
    """Lower-case words of a short message, joined by single spaces (punctuation dropped)."""
    return " ".join(_WORD.findall((text or "")[:CHOICE_CHARS].lower()))


# What follows a number that is an amount of money, not a phone number ("1 500 000 kr", "2 000 000 miljoner").
_AMOUNT_AFTER = re.compile(r"\s{0,3}(?:kr\b|kronor|sek\b|:-|miljon|miljard|mkr|tkr|msek|tusen)", re.IGNORECASE)


def _phone(text: str) -> re.Match[str] | None:
    """The first phone number in ``text``. A sum of money is none: a number followed by a currency or a
    scale ("kolla 1 500 000 kr") or digits without a leading 0 or + and without dashes ("1 500 000",
    "12000000": Swedish numbers start with 0 or +46) was read as a phone number, and "kolla 1 500 000 kr" got
    the contact reply. "555-123-4567" is still one."""
    for m in PHONE.finditer(text):
        raw = m.group(0)
        if _AMOUNT_AFTER.match(text, m.end()):
            continue
        if raw[0] not in "0+" and "-" not in raw:
            continue  # "1 500 000", "12000000", "1 500 000 2025": Swedish numbers start with 0 or +46
        return m
    return None


def find_contact(text: str) -> str | None:
    """The e-mail address or phone number in a message (its first 500 characters), or None."""
    text = str(text or "")[:CONTACT_CHARS]
    m = EMAIL.search(text) or _phone(text)
    return m.group(0).strip() if m else None


def is_cancel(text: str) -> bool:
    """An explicit cancel: "avbryt", "cancel", the cancel button. "nej", "inte en adress" are not."""
    text = str(text or "")
    if len(text) > CHOICE_CHARS:
        return False
    stripped = text.strip().lower()
    return stripped in ("/cancel", "/deny") or _normal(text) in _CANCEL


def choice(text: str) -> str | None:
    """What a message at the summary chooses: SEND, CHANGE_QUESTION, CHANGE_CONTACT, CANCEL, or None."""
    text = str(text or "")
    if is_cancel(text):
        return CANCEL
    if len(text) > CHOICE_CHARS:
        return None
    if text.strip().lower() == "/affirm":
        return SEND
    words = _normal(text)
    for options, value in ((_SEND, SEND), (_CHANGE_QUESTION, CHANGE_QUESTION), (_CHANGE_CONTACT, CHANGE_CONTACT)):
        if words in options:
            return value
    return None


def contact_only(text: str) -> str | None:
    """The contact when a message is little more than one ("anna@example.se", "mejla mig på 070-123 45 67"):
    such a message is never a question to search the documents for."""
    text = str(text or "")
    if len(text) > CHOICE_CHARS * 2 or "?" in text:
        return None
    contact = find_contact(text)
    if contact is None:
        return None
    rest = text.replace(contact, " ")
    # "oj fel, det ska vara anna@example.se" (six words) was read as feedback and the address lost
    return contact if len(_WORD.findall(rest)) <= CONTACT_ONLY_WORDS else None


def without_contacts(text: str) -> str:
    """The text with e-mail addresses and phone numbers taken out (their words say nothing of the
    language: "anna@example.se" is not English)."""
    text = str(text or "")[:2000]
    return PHONE.sub(" ", EMAIL.sub(" ", text))
