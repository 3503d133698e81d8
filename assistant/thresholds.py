"""Threshold figures as the documents state them, and checks of an amount against them.

No figure comes from memory: :func:`extract_rules` reads the indexed paragraphs for sentences that
state an amount together with the direct-award limit or the EU threshold, and every verdict quotes
the sentence, its document and year. Documents disagree (a 2019 study and a 2025 report give
different limits, and Bilaga 2 services have their own), so a check lists every applicable figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from index.paragraphs import Paragraph, sentence_units
from index.store import DocumentInfo

from .language import ENGLISH

DIRECT_AWARD, EU_THRESHOLD = "direct_award", "eu_threshold"
GENERAL, BILAGA2 = "general", "bilaga2"
PURCHASE_KINDS = ("varor", "tjanster", "byggentreprenad", "bilaga2")
BUYER_KINDS = ("kommun", "region", "statlig_myndighet")

# Linear time on any input: a match can only start where a run of digits starts, and every
# quantifier is bounded (a 10,000-digit message once froze the action server for 28 s).
_NUMBER = (r"\d{1,3}(?:,\d{3}){1,5}(?!\d)|\d{1,3}(?:[ \u00a0\u202f.]\d{3}){1,5}(?:,\d{1,6})?"
           r"|\d{1,15}(?:[.,]\d{1,6})?")
MAX_AMOUNT_TEXT = 1000  # longer messages are not form answers: only their start is read
_AMOUNT = re.compile(
    rf"(?<![\d,.])(?P<num>{_NUMBER})\s{{0,3}}(?P<unit>miljarder|miljard|miljoner|miljon|millions|million|billion|thousand|mnkr|mkr|msek|mn|m|tkr|tusen|k|kr|kronor|sek|:-)?"
    r"(?![\w])",
    re.IGNORECASE,
)
_SCALE = {"miljarder": 1e9, "miljard": 1e9, "billion": 1e9, "miljoner": 1e6, "miljon": 1e6, "million": 1e6,
          "millions": 1e6, "thousand": 1e3, "mnkr": 1e6, "mkr": 1e6, "msek": 1e6,
          "mn": 1e6, "m": 1e6, "tkr": 1e3, "tusen": 1e3, "k": 1e3}
_CURRENCY = {"kr", "kronor", "sek", ":-"}
_YEAR_AFTER = re.compile(r"^\s{0,5}(?:kronor|kr)?\s{0,5}(?:år|for|för|in)?\s{0,5}(20\d\d)\b", re.IGNORECASE)


def _kronor(m: re.Match[str]) -> tuple[str, float | None]:
    """The unit (lower-case, "" when none) and the value in kronor of an ``_AMOUNT`` match."""
    unit = (m.group("unit") or "").lower()
    value = _number(m.group("num"))
    return unit, None if value is None else value * _SCALE.get(unit, 1.0)


# "300 000 kr per år", "500k a year": a yearly sum. The documents do not say how one counts against the limits.
_PER_YEAR = re.compile(r"(?:\bper år\b|\bom året\b|\bi året\b|\bårligen\b|/\s{0,2}år\b|\bper year\b|\ba year\b"
                       r"|\bper annum\b|\bannually\b|\byearly\b|\beach year\b|/\s{0,2}year\b)", re.IGNORECASE)


def per_year(text: str) -> bool:
    """Whether ``text`` gives its amount per year ("300 000 kr per år", "500k a year")."""
    return bool(_PER_YEAR.search((text or "")[:MAX_AMOUNT_TEXT]))


def parse_amount(text: str) -> float | None:
    """The first amount of money in ``text`` in kronor: "700 000 kr", "1,3 miljoner", "2 mkr", "250k".

    A bare number counts only when it is the whole message (a form answer like "500000"); years are
    not amounts.
    """
    if not text:
        return None
    text = text[:MAX_AMOUNT_TEXT]
    stripped = text.strip()
    for m in _AMOUNT.finditer(text):
        unit, value = _kronor(m)
        raw = m.group("num")
        grouped = bool(re.fullmatch(r"\d{1,3}(?:[ ,.\u00a0\u202f]\d{3}){1,5}", raw))
        if not unit and not grouped and m.group(0).strip() != stripped.rstrip(".!? "):
            continue
        if not unit and re.fullmatch(r"(19|20)\d\d", raw):
            continue
        if value is not None:
            return value
    return None


def _number(raw: str) -> float | None:
    raw = raw.replace("\u00a0", " ").replace("\u202f", " ")
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", raw):
        return float(raw.replace(",", ""))
    if re.fullmatch(r"\d{1,3}(?:[ .]\d{3})+(?:,\d+)?", raw):
        raw = re.sub(r"[ .]", "", raw)
    raw = raw.replace(" ", "").replace(",", ".")
    try:
        return float(raw)
    except ValueError:
        return None


def format_kronor(value: float) -> str:
    return f"{round(value):,}".replace(",", " ") + " kr"


@dataclass(frozen=True)
class ThresholdRule:
    kind: str  # DIRECT_AWARD | EU_THRESHOLD
    amount: float
    scope: str  # GENERAL | BILAGA2
    valid_year: int | None  # the year the document says the figure applies to, when it says so
    doc_year: int | None
    title: str
    paragraph_id: str
    doc_id: str
    section: str | None
    page: int | None
    paragraph_text: str
    sentence: str

    @property
    def year(self) -> int | None:
        return self.valid_year or self.doc_year


def _kind(sentence: str) -> str | None:
    low = sentence.lower()
    if "direktupphandl" in low:
        return DIRECT_AWARD
    if re.search(r"\bEU\b|EU-", sentence) or "tröskelvärde" in low:
        return EU_THRESHOLD
    return None


def _scope(text: str) -> str:
    low = text.lower()
    if re.search(r"bilaga\s*2\b", low) or "andra särskilda tjänster" in low:
        return BILAGA2
    return GENERAL


def extract_rules(paragraphs: Iterable[Paragraph], documents: Sequence[DocumentInfo]) -> list[ThresholdRule]:
    docs = {d.doc_id: d for d in documents}
    rules: list[ThresholdRule] = []
    for p in paragraphs:
        doc = docs.get(p.doc_id)
        sentences = sentence_units(p.text)
        for i, sentence in enumerate(sentences):
            # "Bilaga 2 omfattar … Direktupphandlingsgränsen för dessa tjänster är …": the scope may be
            # named in the sentence before.
            scope = _scope(" ".join(sentences[max(0, i - 1): i + 1]))
            kind = _kind(sentence)
            if kind is None:
                continue
            for m in _AMOUNT.finditer(sentence):
                unit, value = _kronor(m)
                if unit not in _CURRENCY and unit not in ("miljoner", "miljon", "miljarder", "miljard", "mkr"):
                    continue
                if value is None or value < 10_000:
                    continue
                after = _YEAR_AFTER.match(sentence[m.end():])
                rules.append(ThresholdRule(
                    kind=kind, amount=value, scope=scope, valid_year=int(after.group(1)) if after else None,
                    doc_year=doc.year if doc else None, title=doc.title if doc else p.doc_id,
                    paragraph_id=p.paragraph_id, doc_id=p.doc_id, section=p.section, page=p.page,
                    paragraph_text=p.text, sentence=sentence.strip(),
                ))
    return rules


@dataclass(frozen=True)
class Verdict:
    rule: ThresholdRule
    over: bool  # at or over the figure: the documents allow direct award only *under* the limit


@dataclass(frozen=True)
class Assessment:
    amount: float
    purchase_kind: str | None
    buyer_kind: str | None
    direct_award: list[Verdict]
    eu: list[Verdict]
    all_rules: tuple[ThresholdRule, ...] = ()

    @property
    def rules(self) -> list[ThresholdRule]:
        seen, out = set(), []
        for v in [*self.direct_award, *self.eu]:
            if v.rule.paragraph_id not in seen:
                seen.add(v.rule.paragraph_id)
                out.append(v.rule)
        return out

    @property
    def disagreement(self) -> bool:
        return len({v.rule.amount for v in self.direct_award}) > 1 or len({v.rule.amount for v in self.eu}) > 1


def assess(amount: float, purchase_kind: str | None, buyer_kind: str | None,
           rules: Sequence[ThresholdRule]) -> Assessment:
    """Compare ``amount`` with every figure the documents give for this kind of purchase, newest first."""
    scope = BILAGA2 if purchase_kind == BILAGA2 else GENERAL
    applicable = sorted((r for r in rules if r.scope == scope), key=lambda r: -(r.year or 0))
    return Assessment(
        amount, purchase_kind, buyer_kind,
        [Verdict(r, amount >= r.amount) for r in applicable if r.kind == DIRECT_AWARD],
        [Verdict(r, amount >= r.amount) for r in applicable if r.kind == EU_THRESHOLD],
        tuple(rules),
    )


_KIND_SV = {"varor": "varor", "tjanster": "tjänster", "byggentreprenad": "byggentreprenad",
            "bilaga2": "sociala och andra särskilda tjänster (bilaga 2 till LOU)"}
_KIND_EN = {"varor": "goods", "tjanster": "services", "byggentreprenad": "works (byggentreprenad)",
            "bilaga2": "social and other specific services (Annex 2 to LOU)"}
_BUYER_SV = {"kommun": "en kommun", "region": "en region", "statlig_myndighet": "en statlig myndighet"}
_BUYER_EN = {"kommun": "a municipality", "region": "a region", "statlig_myndighet": "a central government agency"}


def describe(assessment: Assessment, numbers: dict[str, int], language: str) -> str:
    """The verdict in words; ``numbers`` maps paragraph ids to their citation numbers."""
    en = language == ENGLISH
    a = assessment
    amount = format_kronor(a.amount)
    kind = (_KIND_EN if en else _KIND_SV).get(a.purchase_kind or "", None)
    lines = [
        (f"Checking {amount}" + (f" for {kind}" if kind else "") + " against the figures in the documents:")
        if en else
        (f"Jag jämför {amount}" + (f" för {kind}" if kind else "") + " med beloppen i dokumenten:")
    ]

    def verdict_line(v: Verdict, label_en: str, label_sv: str) -> str:
        r = v.rule
        year = f" {r.valid_year}" if r.valid_year else ""
        src = f"[{numbers[r.paragraph_id]}] {r.title} ({r.doc_year})"
        if en:
            side = ("exactly at" if a.amount == r.amount else "over") if v.over else "under"
            return f"– {side} the {label_en}{year} of {format_kronor(r.amount)}: ”{r.sentence}” {src}"
        side = ("exakt på" if a.amount == r.amount else "över") if v.over else "under"
        return f"– {side} {label_sv}{year} på {format_kronor(r.amount)}: ”{r.sentence}” {src}"

    for v in a.direct_award:
        lines.append(verdict_line(v, "direct award limit", "direktupphandlingsgränsen"))
    for v in a.eu:
        lines.append(verdict_line(v, "EU threshold", "EU-gränsen"))
    if not a.direct_award and not a.eu:
        lines.append("The documents state no threshold for this kind of purchase." if en else
                     "Dokumenten anger inget tröskelvärde för den här typen av köp.")
    elif not a.eu:
        lines.append("The documents give no EU threshold for this kind of purchase." if en else
                     "Dokumenten anger inget EU-tröskelvärde för den här typen av köp.")
    if a.disagreement:
        lines.append("The documents give different figures; each is shown with its source and year." if en else
                     "Dokumenten anger olika belopp; vart och ett visas med källa och år.")
    if a.purchase_kind in ("varor", "tjanster", "byggentreprenad") and any(r.scope == GENERAL for r in a.rules):
        lines.append("The document does not distinguish goods, services and works." if en else
                     "Dokumentet skiljer inte på varor, tjänster och byggentreprenader.")
    if a.purchase_kind == "tjanster" and any(r.scope == BILAGA2 for r in a.all_rules):
        lines.append("Social and other specific services (Annex 2 to LOU) have their own, higher limits in the "
                     "documents: say so if that is what you are buying." if en else
                     "Sociala och andra särskilda tjänster (bilaga 2 till LOU) har egna, högre gränser i dokumenten: "
                     "säg till om det är sådana tjänster ni köper.")
    if a.buyer_kind:
        buyer = (_BUYER_EN if en else _BUYER_SV).get(a.buyer_kind, a.buyer_kind)
        lines.append(f"The documents give no separate figures for {buyer}." if en else
                     f"Dokumenten anger inga särskilda belopp för {buyer}.")
    lines.append(
        "Thresholds change every two years and these figures are as old as their documents: check the current "
        "amounts before you decide, or ask to talk to a person."
        if en else
        "Tröskelvärdena ändras vartannat år och beloppen ovan är lika gamla som sina dokument: kontrollera "
        "aktuella belopp innan ni bestämmer er, eller be att få prata med en person."
    )
    return "\n".join(lines)
