"""What the user reads, in Swedish and English. Facts never live here: only framing around quotes.

Bot messages avoid blank lines because Rasa's REST channel splits a text at "\\n\\n" into messages.
"""

from __future__ import annotations

from dataclasses import asdict
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
                "Would you like me to pass your question on to a person? Write “talk to a person”.")
    head = (f"Dokumenten jag svarar utifrån tar inte upp {_names(missing, language)}, så jag vill inte gissa."
            if missing else "Det här hittar jag inget svar på i dokumenten jag har, så jag vill inte gissa.")
    return (f"{head} Jag kan svara på frågor om {TOPICS_SV}. "
            "Vill du att jag skickar frågan vidare till en person? Skriv ”prata med en person”.")


def no_more_results(language: str) -> str:
    if _en(language):
        return "There are no further relevant paragraphs for that question. Try asking it another way."
    return "Jag hittar inga fler relevanta stycken för den frågan. Prova att formulera den på ett annat sätt."


def nothing_asked_yet(language: str) -> str:
    if _en(language):
        return f"Ask me a question first, for example about {TOPICS_EN}."
    return f"Ställ en fråga först, till exempel om {TOPICS_SV}."


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
                "Write “talk to a person” if you want help from a human.")
    return ("Tack, vad bra att det hjälpte." if good else
            "Tack för att du säger till. Jag har sparat det så att teamet kan förbättra svaren. "
            "Skriv ”prata med en person” om du vill ha hjälp av en människa.")


def handoff_confirmed(language: str, contact: str, reference: int) -> str:
    if _en(language):
        return (f"Thank you. Your question has been passed on (reference {reference}); a person will contact "
                f"you at {contact}.")
    return (f"Tack! Din fråga är vidarebefordrad (ärende {reference}). En person hör av sig till dig på {contact}.")


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


def invalid_contact(language: str) -> str:
    if _en(language):
        return "That does not look like an e-mail address or phone number. Please write one of them."
    return "Det ser inte ut som en e-postadress eller ett telefonnummer. Skriv gärna något av dem."


def invalid_amount(language: str) -> str:
    if _en(language):
        return "I could not read an amount there. Write it in kronor, for example “700 000 kr” or “1,2 miljoner”."
    return "Jag kunde inte läsa ut något belopp. Skriv det i kronor, till exempel ”700 000 kr” eller ”1,2 miljoner”."
