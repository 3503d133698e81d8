"""What the user reads, in Swedish and English. Facts never live here: only framing around quotes.

Bot messages avoid blank lines because Rasa's REST channel splits a text at "\\n\\n" into messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

from .language import ENGLISH
from .payload import citation_place

if TYPE_CHECKING:  # pragma: no cover
    from .answer import Citation

TOPICS_SV = ("IOP (idéburet offentligt partnerskap), reserverad upphandling, ramavtal och hur man marknadsför "
             "sig under dem, samt tröskelvärden och direktupphandling")
TOPICS_EN = ("IOP (idea-driven public partnerships), reserved contracts, framework agreements and marketing "
             "yourself under them, and thresholds and direct award")


def _en(language: str) -> bool:
    return language == ENGLISH


def source_line(c: "Citation", language: str) -> str:
    return f"[{c.number}] {citation_place(asdict(c), language)}"


def sources_block(citations: Sequence["Citation"], language: str) -> str:
    head = "Sources:" if _en(language) else "Källor:"
    return "\n".join([head, *(source_line(c, language) for c in citations)])


def _names(names: Sequence[str], language: str) -> str:
    quoted = [f"”{n}”" for n in names]
    if len(quoted) < 2:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} {'or' if _en(language) else 'eller'} {quoted[-1]}"


def _quote_line(c: "Citation", language: str) -> str:
    year = f", {c.year}" if c.year else ""
    return f"”{c.quote}” [{c.number}] ({c.title}{year})"


def compose_answer(language: str, coverage: str, citations: Sequence["Citation"], lead: Sequence[int],
                   missing: Sequence[str] = (), follow_up: bool = True, sources: bool = True) -> str:
    """The answer as text: the sentence(s) that answer first, then the other quotes.

    ``coverage`` "partial" opens with what the documents do not say. ``sources=False`` leaves out the
    plain-text source list, for channels that show the citations their own way (web chat cards,
    Slack blocks, Teams cards)."""
    en = _en(language)
    lines = []
    if coverage == "partial":
        if missing:
            lines.append(f"The documents do not cover {_names(missing, language)}. The closest they say:" if en else
                         f"Dokumenten tar inte upp {_names(missing, language)}. Det närmaste de säger:")
        else:
            lines.append("The documents do not answer this directly. The closest they say:" if en else
                         "Dokumenten svarar inte direkt på det här. Det närmaste de säger:")
    elif en:
        lines.append("The documents say (quoted in Swedish, as written):")
    leads = [c for c in citations if c.number in lead]
    rest = [c for c in citations if c.number not in lead]
    lines.extend(_quote_line(c, language) for c in leads)
    if rest:
        lines.append("Also relevant:" if en else "Mer i källorna:")
        lines.extend(_quote_line(c, language) for c in rest)
    if sources:
        lines.append(sources_block(citations, language))
    if coverage == "partial":
        lines.append("For what the documents do not cover, ask a person: write “talk to a person”." if en else
                     "För det dokumenten inte tar upp kan du fråga en person: skriv ”prata med en person”.")
    elif follow_up:
        lines.append(
            "Write “show the source” for the whole paragraph, “more” for further results, or ask a follow-up."
            if en else
            "Skriv ”visa källan” för hela stycket, ”fler” för fler träffar, eller ställ en följdfråga."
        )
    return "\n".join(lines)


def not_covered(language: str, missing: Sequence[str] = ()) -> str:
    en = _en(language)
    if en:
        head = (f"The documents I answer from do not cover {_names(missing, language)}, so I will not guess."
                if missing else "I cannot find an answer to this in the documents I have, so I will not guess.")
        return (f"{head} I can answer questions about {TOPICS_EN}. "
                "Would you like me to pass your question on to a person? Choose or write “talk to a person”.")
    head = (f"Dokumenten jag svarar utifrån tar inte upp {_names(missing, language)}, så jag vill inte gissa."
            if missing else "Det här hittar jag inget svar på i dokumenten jag har, så jag vill inte gissa.")
    return (f"{head} Jag kan svara på frågor om {TOPICS_SV}. "
            "Vill du att jag skickar frågan vidare till en person? Välj eller skriv ”prata med en person”.")


def no_more_results(language: str) -> str:
    if _en(language):
        return "There are no further relevant paragraphs for that question. Try asking it another way."
    return "Jag hittar inga fler relevanta stycken för den frågan. Prova att formulera den på ett annat sätt."


def nothing_asked_yet(language: str) -> str:
    if _en(language):
        return f"Ask me a question first, for example about {TOPICS_EN}."
    return f"Ställ en fråga först, till exempel om {TOPICS_SV}."


def acknowledged(language: str, asked_before: bool) -> str:
    """The reply to a bare "ok", "jaha" or "nej" when nothing is pending: what can be asked, or, after an
    answer, that another question is welcome."""
    if _en(language):
        return ("OK. Ask me something else whenever you like." if asked_before else
                f"OK! What would you like to know? I answer questions about {TOPICS_EN}, quoting the documents.")
    return ("Okej. Fråga gärna något annat när du vill." if asked_before else
            f"Okej! Vad vill du veta? Jag svarar på frågor om {TOPICS_SV}, med citat ur dokumenten.")


def no_such_source(language: str, number: int, available: int) -> str:
    if _en(language):
        return f"The last answer has no source [{number}]; it cited {available}."
    return f"Det senaste svaret har ingen källa [{number}]; det hänvisade till {available}."


def full_paragraph(language: str, c: "Citation", before: str | None, after: str | None) -> str:
    lines = [source_line(c, language)]
    if before:
        lines.append(("Before: " if _en(language) else "Före: ") + f"… {before}")
    lines.append(f"”{c.quote}”")
    if after:
        lines.append(("After: " if _en(language) else "Efter: ") + f"{after} …")
    return "\n".join(lines)


def changed_question(language: str, question: str) -> str:
    return f"I searched for: “{question}”" if _en(language) else f"Jag sökte på: ”{question}”"


def feedback_thanks(language: str, good: bool) -> str:
    if _en(language):
        return ("Thank you, glad it helped." if good else
                "Thank you for telling me. I have saved it so the team can improve the answers. "
                "Choose or write “talk to a person” if you want help from a human.")
    return ("Tack, vad bra att det hjälpte." if good else
            "Tack för att du säger till. Jag har sparat det så att teamet kan förbättra svaren. "
            "Välj eller skriv ”prata med en person” om du vill ha hjälp av en människa.")


def handoff_limited(language: str) -> str:
    if _en(language):
        return ("You have already sent several requests to talk to a person in the last hour; staff will get back "
                "to you. Please wait before sending another one.")
    return ("Du har redan skickat flera förfrågningar om att prata med en person den senaste timmen; personalen "
            "hör av sig. Vänta en stund innan du skickar en till.")


def handoff_failed(language: str) -> str:
    if _en(language):
        return ("Something went wrong on my side and your request could not be saved. Please try again in a "
                "while, or contact the hub directly.")
    return ("Något gick fel hos mig och din förfrågan kunde inte sparas. Försök igen om en stund, eller kontakta "
            "oss direkt.")


def invalid_amount(language: str) -> str:
    if _en(language):
        return "I could not read an amount there. Write it in kronor, for example “700 000 kr” or “1,2 miljoner”."
    return "Jag kunde inte läsa ut något belopp. Skriv det i kronor, till exempel ”700 000 kr” eller ”1,2 miljoner”."


def query_refused_en() -> str:
    """The English reply for a message the search cannot take (the search's own reasons are Swedish)."""
    return f"There is nothing in that message to search for. Ask me a question, for example about {TOPICS_EN}."


def yearly_amount(language: str) -> str:
    if _en(language):
        return ("You gave the amount per year. The documents do not say how a yearly amount counts against the "
                "limits (for a contract over several years, for example), so I compare it as written: ask a person "
                "before you rely on it.")
    return ("Du angav beloppet per år. Dokumenten säger inte hur ett årsbelopp räknas mot gränserna (till exempel "
            "för ett avtal över flera år), så jag jämför det som det står: fråga en person innan du litar på det.")


def invalid_purchase_kind(language: str) -> str:
    if _en(language):
        return "I could not tell what kind of purchase that is."
    return "Jag kunde inte avgöra vad det är för slags köp."


# -- asking for a person ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HandoffTerms:
    """What the service's operator sets (AssistantSettings.handoff_terms): when staff answer, who reads
    the request, how long it is kept; in the language of the texts they go into."""
    reply_time: str
    staff: str
    retention: str


def handoff_consent(language: str, terms: HandoffTerms) -> str:
    """Said before any contact detail is asked for: what is stored, who reads it, how long, when to expect a reply."""
    if _en(language):
        return (f"I can pass your question on to a person. Before you give your contact details: what is sent is "
                f"your question, this conversation and the contact details you give. They are read only by "
                f"{terms.staff}, and kept {terms.retention}. You can expect a reply {terms.reply_time}. "
                "You will see a summary before anything is sent, and you can cancel at any time.")
    return (f"Jag kan skicka din fråga vidare till en person. Innan du lämnar dina kontaktuppgifter: det som skickas "
            f"är din fråga, den här konversationen och kontaktuppgiften du lämnar. Uppgifterna läses bara av "
            f"{terms.staff} och sparas {terms.retention}. Du kan räkna med svar {terms.reply_time}. "
            "Du får se en sammanfattning innan något skickas, och du kan avbryta när du vill.")


def cancel_button(language: str) -> dict:
    title = "Cancel" if _en(language) else "Avbryt"
    return {"title": title, "payload": title}


def handoff_ask_question(language: str) -> str:
    if _en(language):
        return "What is your question? Write it in a sentence or two, so the person can prepare an answer."
    return "Vad gäller din fråga? Skriv den med en mening eller två, så att personen kan förbereda ett svar."


def handoff_ask_contact(language: str, again: bool = False, changing: bool = False) -> str:
    """The request for an e-mail address or phone number; ``again`` after something that was neither
    (it explains what is expected), ``changing`` after "change the contact" at the summary."""
    if _en(language):
        if again:
            return ("That does not look like a complete e-mail address or phone number, so I have not sent anything "
                    "yet. Write an e-mail address such as name@example.com, or a phone number with its area code "
                    "such as 070-123 45 67. If you would rather not leave contact details, choose Cancel.")
        if changing:
            return "Write the e-mail address or phone number they should use instead."
        return "How can we reach you? Write an e-mail address or a phone number."
    if again:
        return ("Det där ser inte ut som en hel e-postadress eller ett telefonnummer, så jag har inte skickat något "
                "än. Skriv en e-postadress som namn@exempel.se, eller ett telefonnummer med riktnummer som "
                "070-123 45 67. Vill du inte lämna någon kontaktuppgift kan du välja Avbryt.")
    if changing:
        return "Skriv den e-postadress eller det telefonnummer de ska använda i stället."
    return "Hur når vi dig? Skriv en e-postadress eller ett telefonnummer."


def handoff_summary(language: str, question: str, contact: str) -> str:
    """What will be sent, before it is: the question, the contact, and that the conversation goes along."""
    question = question if len(question) <= 600 else question[:599] + "…"
    if _en(language):
        return ("This is what will be sent to the staff:\n"
                f"Question: “{question}”\n"
                f"Contact: {contact}\n"
                "This conversation is included so they can see what you have already been told. Shall I send it?")
    return ("Det här skickas till personalen:\n"
            f"Fråga: ”{question}”\n"
            f"Kontakt: {contact}\n"
            "Den här konversationen följer med så att de ser vad du redan fått veta. Ska jag skicka den?")


def handoff_summary_buttons(language: str) -> list[dict]:
    titles = (("Send to the staff", "Change the question", "Change the contact", "Cancel") if _en(language) else
              ("Skicka till personalen", "Ändra frågan", "Ändra kontaktuppgiften", "Avbryt"))
    return [{"title": t, "payload": t} for t in titles]


def handoff_choose(language: str) -> str:
    """At the summary, after a message that is no choice."""
    if _en(language):
        return ("I have not sent anything yet. Choose “Send to the staff”, change the question or the contact, "
                "or Cancel.")
    return ("Jag har inte skickat något än. Välj ”Skicka till personalen”, ändra frågan eller kontaktuppgiften, "
            "eller Avbryt.")


def handoff_cancelled(language: str) -> str:
    if _en(language):
        return ("OK, I have cancelled the request: nothing was sent and your contact details were not saved. "
                "Ask me anything else, or write “talk to a person” to start again.")
    return ("Okej, jag har avbrutit förfrågan: inget skickades och dina kontaktuppgifter sparades inte. "
            "Fråga gärna något annat, eller skriv ”prata med en person” för att börja om.")


def handoff_sent(language: str, contact: str, reference: int, terms: HandoffTerms) -> str:
    """Only after the request is stored."""
    if _en(language):
        return (f"Sent. Your question has been passed on to the staff (reference {reference}). They will reply "
                f"{terms.reply_time} at {contact}, and their reply will also appear here in the chat.")
    return (f"Skickat! Din fråga har gått vidare till personalen (ärende {reference}). De svarar {terms.reply_time} "
            f"på {contact}, och svaret visas också här i chatten.")


def contact_without_request(language: str, contact: str, cancelled: bool) -> str:
    """A message that is only an e-mail address or phone number, with no request for a person open."""
    if _en(language):
        lead = ("You cancelled the request to talk to a person, so nothing has been sent. " if cancelled else
                f"That looks like contact details ({contact}), not a question. ")
        return lead + "Would you like a person to contact you there about your question?"
    lead = ("Du avbröt förfrågan om att prata med en person, så inget har skickats. " if cancelled else
            f"Det där ser ut som en kontaktuppgift ({contact}), inte en fråga. ")
    return lead + "Vill du att en person kontaktar dig där om din fråga?"


def contact_offer_buttons(language: str) -> list[dict]:
    if _en(language):
        return [{"title": "Yes, talk to a person", "payload": "/request_human"},
                {"title": "No thanks", "payload": "/deny"}]
    return [{"title": "Ja, prata med en person", "payload": "/request_human"},
            {"title": "Nej tack", "payload": "/deny"}]


def staff_reply(language: str, author: str, text: str) -> str:
    """A staff member's reply as delivered in Slack or Teams (the web chat shows its author itself)."""
    if _en(language):
        return f"Reply from {author} (staff), about your question to a person:\n{text}"
    return f"Svar från {author} (personalen) på din fråga till en person:\n{text}"
