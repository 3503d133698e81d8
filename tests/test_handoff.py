"""The hand-over's readers (assistant/handoff.py) and texts (assistant/texts.py), without Rasa."""

from __future__ import annotations

import pytest

from assistant import handoff, texts
from assistant.settings import AssistantSettings


@pytest.mark.parametrize("text", ["avbryt", "Avbryt", " AVBRYT. ", "avbryt tack", "nej, avbryt", "cancel",
                                  "Cancel!", "forget it", "/deny", "/cancel", "glöm det"])
def test_explicit_cancels(text):
    assert handoff.is_cancel(text) and handoff.choice(text) == handoff.CANCEL


@pytest.mark.parametrize("text", ["inte en adress", "jon@", "070-12", "nej", "no", "nej tack", "vet inte", "",
                                  "kan jag avbryta ett IOP-avtal i förtid?", "avbryt " * 20])
def test_typos_and_questions_are_no_cancel(text):
    assert not handoff.is_cancel(text)


@pytest.mark.parametrize("text, expected", [
    ("Skicka", handoff.SEND), ("Skicka till personalen", handoff.SEND),
    ("Send to the staff", handoff.SEND), ("ja", handoff.SEND), ("Ja tack!", handoff.SEND), ("Send", handoff.SEND),
    ("yes please", handoff.SEND), ("/affirm", handoff.SEND),
    ("Ändra frågan", handoff.CHANGE_QUESTION), ("Change the question", handoff.CHANGE_QUESTION),
    ("Ändra kontaktuppgiften", handoff.CHANGE_CONTACT), ("ändra", handoff.CHANGE_CONTACT),
    ("Change the contact", handoff.CHANGE_CONTACT), ("Avbryt", handoff.CANCEL), ("Cancel", handoff.CANCEL),
    ("nej", None), ("hmm", None), ("skicka den till min chef också och fråga om avtalet", None),
])
def test_summary_choices(text, expected):
    assert handoff.choice(text) == expected


@pytest.mark.parametrize("text, contact", [
    ("anna@example.se", "anna@example.se"), ("mejla mig på anna.b@kommun.example.se tack", "anna.b@kommun.example.se"),
    ("070-123 45 67", "070-123 45 67"), ("+46 70 123 45 67", "+46 70 123 45 67"),
    ("jon@", None), ("070-12", None), ("inte en adress", None),
    # Sums of money are no phone numbers ("kolla 1 500 000 kr" got the contact reply and no amount check).
    ("kolla 1 500 000 kr", None), ("1 500 000", None), ("kolla 1 200 000 kronor", None), ("2 300 000 SEK", None),
    ("ring 08-123 456 78", "08-123 456 78"), ("555-123-4567", "555-123-4567"),
    # A correction was read as feedback ("fel svar") and the new address lost.
    ("oj fel, det ska vara anna.svensson@example.se", "anna.svensson@example.se"),
    ("Kan ni mejla anna@example.se om hur man skriver ett IOP-avtal?", None),  # a question, not only a contact
    ("skicka svaret till anna@example.se för jag har en lång fråga om ramavtal och reserverade kontrakt", None),
])
def test_contact_only(text, contact):
    assert handoff.contact_only(text) == contact


def test_contacts_are_taken_out_before_the_language_is_read():
    from assistant.language import detect_language

    assert detect_language("anna.andersson@example.se", "sv") == "sv"  # unchanged by the address alone
    # A one-word English request ("human", "cancel", "more") is English, as "hello" is; Swedish stays Swedish.
    assert [detect_language(w) for w in ("human", "Cancel", "more", "help")] == ["en"] * 4
    assert detect_language("människa") == "sv" and detect_language("kan ni hjälpa mig med IOP?") == "sv"
    assert handoff.without_contacts("skriv till anna@example.se eller 070-123 45 67").split() == ["skriv", "till",
                                                                                                   "eller"]


def test_consent_text_names_what_is_stored_who_reads_it_how_long_and_when():
    settings = AssistantSettings(handoff_reply_time="inom tre dagar", handoff_staff="Coompanion Dalarna",
                                 handoff_retention="i sex månader", handoff_reply_time_en="within three days",
                                 handoff_staff_en="Coompanion Dalarna's staff", handoff_retention_en="for six months")
    sv = texts.handoff_consent("sv", settings.handoff_terms("sv"))
    en = texts.handoff_consent("en", settings.handoff_terms("en"))
    for part in ("din fråga", "den här konversationen", "kontaktuppgiften", "Coompanion Dalarna", "i sex månader",
                 "inom tre dagar", "sammanfattning", "avbryta"):
        assert part in sv, part
    for part in ("your question", "this conversation", "contact details", "Coompanion Dalarna's staff",
                 "for six months", "within three days", "summary", "cancel"):
        assert part in en, part
    assert "\n\n" not in sv + en  # REST would split a message at a blank line


def test_default_terms_and_sent_text():
    terms = AssistantSettings().handoff_terms("sv")
    assert terms.reply_time == "inom två arbetsdagar"
    sent = texts.handoff_sent("sv", "anna@example.se", 12, terms)
    assert "ärende 12" in sent and "inom två arbetsdagar" in sent and "anna@example.se" in sent
    sent_en = texts.handoff_sent("en", "anna@example.se", 12, AssistantSettings().handoff_terms("en"))
    assert "reference 12" in sent_en and "within two working days" in sent_en and "ärende" not in sent_en


def test_summary_cuts_a_very_long_question_and_keeps_one_message():
    text = texts.handoff_summary("sv", "x" * 5000, "anna@example.se")
    assert len(text) < 1000 and "…" in text and "\n\n" not in text


def test_every_hand_over_text_exists_in_both_languages():
    terms = AssistantSettings().handoff_terms("sv")
    pairs = [
        (texts.handoff_ask_question("sv"), texts.handoff_ask_question("en")),
        (texts.handoff_ask_contact("sv"), texts.handoff_ask_contact("en")),
        (texts.handoff_ask_contact("sv", again=True), texts.handoff_ask_contact("en", again=True)),
        (texts.handoff_ask_contact("sv", changing=True), texts.handoff_ask_contact("en", changing=True)),
        (texts.handoff_choose("sv"), texts.handoff_choose("en")),
        (texts.handoff_cancelled("sv"), texts.handoff_cancelled("en")),
        (texts.contact_without_request("sv", "a@b.se", True), texts.contact_without_request("en", "a@b.se", True)),
        (texts.staff_reply("sv", "Anna", "Hej"), texts.staff_reply("en", "Anna", "Hi")),
        (texts.handoff_sent("sv", "a@b.se", 1, terms),
         texts.handoff_sent("en", "a@b.se", 1, AssistantSettings().handoff_terms("en"))),
    ]
    for sv, en in pairs:
        assert sv != en and any(c in sv for c in "åäö"), sv
        assert not any(c in en for c in "åäö"), en
