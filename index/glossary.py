"""English -> Swedish domain terms, so English questions also reach the Swedish keyword index.

The semantic model is multilingual, the BM25 index is not: an English question gets the Swedish
terms of the procurement vocabulary it uses appended to its keyword query. Keys are lower-case
English word sequences (matched on word boundaries); values are Swedish words as the documents
spell them.
"""

from __future__ import annotations

import re
from functools import lru_cache

GLOSSARY: dict[str, str] = {
    "procurement": "upphandling",
    "public procurement": "offentlig upphandling",
    "procurement act": "lagen om offentlig upphandling LOU",
    "procurement authority": "Upphandlingsmyndigheten",
    "tender": "upphandling anbud",
    "tenders": "upphandlingar anbud",
    "bid": "anbud",
    "bids": "anbud",
    "bidder": "anbudsgivare",
    "supplier": "leverantör",
    "suppliers": "leverantörer",
    "contract": "avtal kontrakt",
    "contracts": "avtal kontrakt",
    "framework agreement": "ramavtal",
    "framework agreements": "ramavtal",
    "framework": "ramavtal",
    "direct award": "direktupphandling",
    "direct awards": "direktupphandling",
    "direct procurement": "direktupphandling",
    "threshold": "tröskelvärde gräns",
    "thresholds": "tröskelvärden gräns",
    "ceiling": "gräns",
    "limit": "gräns",
    "reserved": "reserverad reservera",
    "reserve": "reservera",
    "reserved contract": "reserverade kontrakt reserverad upphandling",
    "non-profit": "idéburen ideell",
    "non-profits": "idéburna ideella",
    "nonprofit": "idéburen ideell",
    "charity": "ideell förening",
    "cooperative": "kooperativ ekonomisk förening",
    "co-operative": "kooperativ ekonomisk förening",
    "civil society": "civilsamhället",
    "idea-based": "idéburen",
    "partnership": "partnerskap IOP",
    "iop": "IOP idéburet offentligt partnerskap",
    "social enterprise": "socialt företag",
    "social enterprises": "sociala företag",
    "work integration": "arbetsintegrerande",
    "work-integration": "arbetsintegrerande",
    "work training": "arbetsträning",
    "work-training": "arbetsträning",
    "municipality": "kommun",
    "municipalities": "kommuner",
    "region": "region",
    "county council": "region",
    "public sector": "offentlig sektor",
    "welfare": "välfärd",
    "outcome contract": "utfallskontrakt",
    "outcome contracts": "utfallskontrakt",
    "social impact bond": "sociala utfallskontrakt",
    "investors": "investerare",
    "investor": "investerare",
    "social investment fund": "sociala investeringsfonder",
    "bond": "obligation",
    "bonds": "obligationer",
    "preventive": "förebyggande",
    "prevention": "förebyggande",
    "budget": "budget",
    "grant": "bidrag",
    "grants": "bidrag",
    "subsidy": "bidrag",
    "state aid": "statsstöd",
    "court": "domstol dom",
    "appeal": "överprövning överklaga",
    "ruling": "dom",
    "advertise": "annonsera",
    "advertising": "annonsering",
    "marketing": "marknadsföring",
    "market": "marknadsföra",
    "definition": "definition",
    "defined": "definieras",
    "eu": "EU",
    "european": "EU",
    "requirements": "krav",
    "requirement": "krav",
    "criteria": "kriterier krav",
    "employment": "sysselsättning anställning",
    "unemployed": "arbetslösa",
    "internship": "praktik",
    "admitted": "antas",
    "agreement": "överenskommelse avtal",
    "loan": "lån",
    "lend": "låna",
    "risk": "risk",
    "left": "vänster politisk",
    "right": "höger politisk",
    "politics": "politisk",
    "political": "politisk",
    "law": "lag",
    "exemption": "undantag",
    "exception": "undantag",
    "exempt": "undantag",
    "legal": "juridisk",
    "dialogue": "dialog",
    "buyer": "beställare upphandlande myndighet",
    "buyers": "beställare upphandlande myndigheter",
    "purchaser": "beställare",
    "contracting authority": "upphandlande myndighet",
    "visible": "synas synlig",
    "visibility": "synlighet synas",
    "noticed": "synas",
    "collaboration": "samverkan samarbete",
    "cooperation": "samverkan samarbete",
    "partner": "partner part",
    "follow-up": "uppföljning",
    "follow up": "följa upp uppföljning",
    "evaluate": "utvärdera",
    "evaluation": "utvärdering",
    "measure": "mäta",
    "tax": "skatt",
    "vat": "moms mervärdesskatt",
    "invoice": "faktura",
    "invoices": "fakturor",
    "payment": "betalning ersättning",
    "volunteer": "frivillig ideell",
    "eligible": "kvalificerad",
    "eligibility": "kvalificera krav",
    "call-off": "avrop",
    "call-offs": "avrop",
    "subcontractor": "underleverantör",
    "subcontractors": "underleverantörer",
    "women's shelter": "kvinnojour",
    "volunteers": "volontärer",
    "social services": "sociala tjänster socialtjänst",
    "special services": "särskilda tjänster",
    "annex": "bilaga",
    "education": "utbildning",
    "evaluation": "utvärdering",
    "follow-up": "uppföljning",
    "internal": "intern",
}

ENGLISH_HINTS = {
    "the", "what", "how", "why", "is", "are", "can", "does", "do", "which", "who", "when", "should", "would",
    "our", "we", "a", "an", "of", "to", "for", "and", "or", "with", "there", "anyone", "has", "have", "it",
}
SWEDISH_HINTS = {"och", "att", "är", "det", "som", "en", "vi", "för", "på", "med", "kan", "hur", "vad", "om", "får"}


def looks_english(text: str) -> bool:
    words = re.findall(r"[a-zåäöé']+", text.lower())
    if not words:
        return False
    en = sum(w in ENGLISH_HINTS for w in words)
    sv = sum(w in SWEDISH_HINTS for w in words) + 2 * sum(any(c in w for c in "åäö") for w in words)
    return en > sv


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    keys = sorted(GLOSSARY, key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(k) for k in keys) + r")(?![\w-])")


def swedish_terms(text: str) -> str:
    """Swedish renderings of the English domain terms found in ``text`` (space-separated)."""
    found = _pattern().findall(text.lower())
    seen: list[str] = []
    for key in found:
        value = GLOSSARY[key]
        if value not in seen:
            seen.append(value)
    return " ".join(seen)
