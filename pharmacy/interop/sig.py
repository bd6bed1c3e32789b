"""Free-text medication lines ("sigs") → structured fields with per-field confidence.

Pure: no Django, no ORM. Used by the HL7 v2 reader for discharge medications sent as OBX text
and by anything else that receives a typed medication list.

    parse_medication_list("METFORMIN 500MG BID, LISINOPRIL 10MG DAILY")  → two ParsedSig
    parse_sig("Atorvastatin 40 mg PO QHS PRN")  → drug atorvastatin, 40 mg, oral, qhs, as needed

Drug names come from the optional ``known_drugs`` mapping (synonym, lowercased → canonical name,
e.g. from the pharmacy catalog) and from the ``drug-named-entity-recognition`` dictionary (brand →
generic). Misspellings are matched by edit distance against that dictionary and get a confidence
below ``REVIEW_THRESHOLD``, so ``needs_review`` is true: a fuzzy guess is never reported as certain.

Normalised vocabularies:
  route      oral, sublingual, topical, inhaled, subcutaneous, intramuscular, intravenous,
             ophthalmic, otic, nasal, rectal, transdermal, vaginal
  frequency  daily, bid, tid, qid, qhs, qam, qpm, q{N}h, q{A}-{B}h, q{N}min, qod, q{N}d, weekly,
             biw, tiw, q{N}w, monthly, q{N}mo, once, prn (as needed with no other timing),
             weekly:mon,wed,fri (named week days)
  unit       mg, mcg, g, meq, mmol, units, %, mL, L and ratios such as mg/mL, mg/5mL,
             mcg/actuation, mcg/hr
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType

__all__ = [
    "REVIEW_THRESHOLD",
    "ParsedSig",
    "comparable_frequency",
    "frequency_from_period",
    "frequency_from_timing",
    "meal_qualifier",
    "normalize_frequency",
    "normalize_route",
    "parse_directions",
    "parse_medication_list",
    "parse_sig",
]

REVIEW_THRESHOLD = 0.8

# Confidence given to each kind of evidence (policy values; kept in one place).
CONF_KNOWN = 1.0  # exact hit in the caller's catalog (known_drugs)
CONF_EXACT = 0.95  # exact hit in the drug dictionary (generic or brand)
CONF_COMBO = 0.9  # "hydrocodone/acetaminophen": every part matched exactly
CONF_AMBIGUOUS_EXACT = 0.6  # one name, several different generics
CONF_FUZZY_1 = 0.65  # one typo (edit distance 1)
CONF_FUZZY_2 = 0.5  # two typos
CONF_FUZZY_AMBIGUOUS = 0.4  # typo that could be several different drugs
CONF_EXPLICIT = 0.95  # an explicit abbreviation or phrase (PO, BID, 500 mg)
CONF_IMPLIED = 0.7  # route implied by the dose form (tablet → oral)
CONF_CONFLICT = 0.6  # two different values written on the same line
CONF_TAPER = 0.6  # a schedule that changes: the first step's frequency is not the whole story


@dataclass
class ParsedSig:
    text: str  # the line as given
    drug: str = ""  # canonical generic name (catalog name, or dictionary name lowercased)
    drug_text: str = ""  # the drug words as written, e.g. "metoprolol succinate ER"
    brand: str = ""  # brand written instead of the generic, e.g. "Lipitor"
    strength: str = ""  # "500", "5-325", "0.1"
    unit: str = ""  # "mg", "mcg/actuation", "%"
    dose: str = ""  # "1 tablet", "2 puffs", "20 units"
    form: str = ""  # tablet, capsule, inhaler, patch, …
    route: str = ""
    frequency: str = ""
    as_needed: bool = False
    indication: str = ""  # "wheeze" in "prn wheeze"
    status: str = ""  # "stopped" / "on-hold" when the line says stop / hold
    meal: str = ""  # timing qualifier: "ac" (ante cibum), "pc", "with meals", "hs", "ac hs", …
    duration: str = ""  # "5 days" in "x 5 days"
    taper: bool = False  # a schedule that changes over time ("… then …", "taper")
    steps: list[str] = field(default_factory=list)  # each step of a taper as written
    notes: list[str] = field(default_factory=list)  # what could not be read, said plainly
    candidates: list[str] = field(default_factory=list)  # other names a fuzzy match could be
    confidence: dict[str, float] = field(default_factory=dict)  # drug, strength, route, frequency

    @property
    def overall_confidence(self) -> float:
        """Lowest confidence among the fields that were found (0.0 if no drug)."""
        return min(self.confidence.values()) if self.confidence else 0.0

    @property
    def needs_review(self) -> bool:
        return self.confidence.get("drug", 0.0) < REVIEW_THRESHOLD

    @property
    def unreadable(self) -> bool:
        """Directions were given but nothing of dose, route, frequency or PRN could be read."""
        return bool(self.text.strip()) and not (
            self.frequency or self.dose or self.route or self.as_needed or self.strength
        )

    @property
    def frequency_code(self) -> str:
        """Frequency with its timing qualifier, as readers store it: "tid ac", "bid", "qhs"."""
        if self.frequency and self.meal and self.meal not in self.frequency:
            return f"{self.frequency} {self.meal}"
        return self.frequency

    @property
    def strength_text(self) -> str:
        return f"{self.strength} {self.unit}".strip() if self.strength else ""


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMWORD = r"one|two|three|four|five|six|half(?:\s+a)?|1/2|½"

# Strength: number (or range / combination "5-325", "10/325") + mass-like unit, optional "/per".
_STRENGTH = re.compile(
    rf"(?<![\w.])(?P<num>{_NUM})(?:\s*(?P<sep>[-/])\s*(?P<num2>{_NUM}))?\s*"
    r"(?P<unit>mcg|µg|μg|ug|mg|grams?|gm|g|meq|mmol|international\s+units|units?|iu|u|%|ml|l)"
    rf"(?:\s*/\s*(?P<per_num>{_NUM})?\s*"
    r"(?P<per>ml|l|actuations?|act|puffs?|sprays?|doses?|hrs?|hours?|h|24\s*h(?:rs?|ours?)?|day|kg|m2|g|tab(?:let)?))?"
    r"(?![\w%])"
)
_UNIT = {
    "mcg": "mcg", "µg": "mcg", "μg": "mcg", "ug": "mcg", "mg": "mg", "g": "g", "gm": "g",
    "gram": "g", "grams": "g", "meq": "meq", "mmol": "mmol", "unit": "units", "units": "units",
    "iu": "units", "u": "units", "%": "%", "ml": "mL", "l": "L",
}
_PER_UNIT = {
    "ml": "mL", "l": "L", "act": "actuation", "actuation": "actuation", "actuations": "actuation",
    "puff": "actuation", "puffs": "actuation", "spray": "spray", "sprays": "spray", "dose": "dose",
    "doses": "dose", "h": "hr", "hr": "hr", "hrs": "hr", "hour": "hr", "hours": "hr", "day": "day",
    "kg": "kg", "m2": "m2", "g": "g", "tab": "tablet", "tablet": "tablet",
}

_DOSE_FORMS = {
    "tablet": r"tabs?|tablets?|pills?",
    "capsule": r"caps?|capsules?|softgels?|gelcaps?",
    "puff": r"puffs?|inhalations?",
    "spray": r"sprays?",
    "drop": r"drops?|gtts?",
    "patch": r"patch(?:es)?",
    "suppository": r"suppositor(?:y|ies)",
    "unit": r"units?",
    "mL": r"ml",
    "application": r"applications?|applicatorfuls?",
    "pen": r"pens?",
    "vial": r"vials?",
    "packet": r"packets?|sachets?",
    "lozenge": r"lozenges?|troches?",
    "film": r"films?|strips?",
    "scoop": r"scoops?|capfuls?",
    "teaspoon": r"teaspoons?|tsp",
    "tablespoon": r"tablespoons?|tbsp",
    "injection": r"injections?",
    "dose": r"doses?",
}
_PLURAL = {"patch": "patches", "mL": "mL", "unit": "units"}
_DOSE = re.compile(
    rf"(?<![\w.])(?P<num>(?:{_NUM})(?:\s*(?:-|to)\s*(?:{_NUM}))?|{_NUMWORD})\s*"
    rf"(?P<form>{'|'.join(f'(?:{p})' for p in _DOSE_FORMS.values())})(?![\w])"
)
_WORD_NUM = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
             "half": "1/2", "half a": "1/2", "½": "1/2"}

# Product forms written without a count ("10 mg tab", "albuterol inhaler").
_FORM_WORDS = [
    ("tablet", r"tabs?|tablets?|pills?|odt"),
    ("capsule", r"caps?|capsules?|softgels?"),
    ("inhaler", r"inhalers?|mdi|hfa|diskus|respimat"),
    ("solution", r"solution|soln|liquid|syrup|elixir|suspension|susp"),
    ("cream", r"cream|ointment|oint|gel|lotion"),
    ("patch", r"patch(?:es)?"),
    ("suppository", r"suppositor(?:y|ies)"),
    ("drops", r"drops|gtts"),
    ("spray", r"spray"),
    ("injection", r"injection|inj|syringe|pen|vial"),
]
_FORM_RE = [(name, re.compile(rf"\b(?:{p})\b")) for name, p in _FORM_WORDS]
_IMPLIED_ROUTE = {
    "tablet": "oral", "capsule": "oral", "puff": "inhaled", "inhaler": "inhaled",
    "patch": "transdermal", "suppository": "rectal", "cream": "topical", "lozenge": "oral",
}

# Explicit routes (HL7 table 0162 abbreviations and plain English). Text is lowercased first.
_ROUTES: list[tuple[str, str]] = [
    ("oral", r"\bpo\b|\bby\s+mouth\b|\borally\b|\boral\b(?!\s+inhal)|\bper\s+os\b"
             r"|\bswish\s+and\s+swallow\b"),
    ("sublingual", r"\bsl\b|\bsub\s*lingual(?:ly)?\b|\bunder\s+the\s+tongue\b"),
    ("topical", r"\btopical(?:ly)?\b|\btop\b|\bapply\s+(?:to|on)\s+(?:the\s+)?(?:skin|affected)"
                r"|\bto\s+(?:the\s+)?affected\s+areas?\b|\bexternally\b"),
    ("inhaled", r"\binh\b|\binhal(?:e|ed|ation|ations)\b|\bvia\s+(?:neb(?:ulizer)?|inhaler)\b"
                r"|\bnebs?\b|\bnebuli[sz](?:ed|er)\b|\boral\s+inhal"),
    ("subcutaneous", r"\bsc\b|\bsq\b|\bsubq\b|\bsub[\s-]?q\b|\bsubcut(?:aneous(?:ly)?)?\b"
                     r"|\bsub[\s-]?cutaneous(?:ly)?\b|\bunder\s+the\s+skin\b"),
    ("intramuscular", r"\bim\b|\bintramuscular(?:ly)?\b|\binto\s+the\s+muscle\b"),
    ("intravenous", r"\biv\b|\bivpb\b|\bivp\b|\bintravenous(?:ly)?\b|\biv\s*push\b"),
    ("ophthalmic", r"\bophthalmic\b|\bou\b|\b(?:in|into)\s+(?:each|both|the|left|right|affected)"
                   r"\s+eyes?\b|\beye\s*drops?\b|\b(?:left|right|both)\s+eyes?\b"),
    ("otic", r"\botic\b|\b(?:in|into)\s+(?:each|both|the|left|right|affected)\s+ears?\b"
             r"|\bear\s*drops?\b"),
    ("nasal", r"\bnasal(?:ly)?\b|\bintranasal(?:ly)?\b|\b(?:in|into|per)\s+(?:each|both|the|one|left"
              r"|right)?\s*nostrils?\b|\bnostrils?\b"),
    ("rectal", r"\bpr\b|\brectal(?:ly)?\b|\bper\s+rectum\b"),
    ("transdermal", r"\btransdermal(?:ly)?\b|\btd\b"),
    ("vaginal", r"\bvaginal(?:ly)?\b|\bpv\b|\bper\s+vagina\b|\bintravaginal(?:ly)?\b"),
]
_ROUTE_RE = [(name, re.compile(p)) for name, p in _ROUTES]

# Frequencies, most specific first. A value is a code or a function of the match.
_TIMES = r"(?:x|times?)"
_PER_DAY = r"(?:(?:a|per|each|every|/)\s*day|daily|(?:a|per)\s*24\s*h(?:ours?|rs?)?)"
_PER_WEEK = r"(?:(?:a|per|each|every|/)\s*(?:week|wk))"


def _q_hours(m: re.Match) -> str:
    n = int(m.group(1))
    return {24: "daily", 48: "qod"}.get(n, f"q{n}h")


def _q_days(m: re.Match) -> str:
    n = int(m.group(1) or m.group(2))
    return {1: "daily", 2: "qod", 7: "weekly", 14: "q2w"}.get(n, f"q{n}d")


def _q_months(m: re.Match) -> str:
    n = int(m.group(1) or m.group(2))
    return "monthly" if n == 1 else f"q{n}mo"


def _q_weeks(m: re.Match) -> str:
    n = int(m.group(1) or m.group(2))
    return "weekly" if n == 1 else f"q{n}w"


_PER_DAY_CODES = {1: "daily", 2: "bid", 3: "tid", 4: "qid"}


def _per_day_code(n: str) -> str:
    number = int(_NUMBER_WORDS.get(n.lower(), n))
    return _PER_DAY_CODES.get(number, f"{number}x daily")


_DAY_NAMES = {
    "mon": r"mon(?:day)?s?|m", "tue": r"tue(?:s(?:day)?)?s?|tu|t", "wed": r"wed(?:nesday)?s?|w",
    "thu": r"thu(?:r(?:s(?:day)?)?)?s?|th|r", "fri": r"fri(?:day)?s?|f",
    "sat": r"sat(?:urday)?s?|sa", "sun": r"sun(?:day)?s?|su",
}
_DAY_TOKEN = "|".join(f"(?:{p})" for p in _DAY_NAMES.values())
_DAYS_RE = re.compile(
    rf"\b(?:on\s+)?(?P<days>(?:{_DAY_TOKEN})(?:\s*(?:/|,|-|&|\band\b)\s*(?:{_DAY_TOKEN}))+)\b"
)
_FULL_DAY_RE = re.compile(r"\bon\s+(?P<days>(?:mon|tues?|wednes|thurs|fri|satur|sun)days?)\b")


def _day_key(token: str) -> str:
    return next((key for key, pattern in _DAY_NAMES.items() if re.fullmatch(pattern, token)), "")


def _days_code(text: str) -> str:
    order = list(_DAY_NAMES)
    tokens = re.split(r"\s*(?:/|,|-|&|\band\b)\s*", text)
    keys = [k for k in (_day_key(t) for t in tokens) if k]
    if len(keys) == 2 and re.fullmatch(r"\w+\s*-\s*\w+", text):  # "M-F": Monday through Friday
        first, last = order.index(keys[0]), order.index(keys[1])
        keys = order[first:last + 1] if first < last else keys
    found = sorted(set(keys), key=order.index)
    return "weekly:" + ",".join(found)


_FREQUENCIES: list[tuple[str, str | Callable[[re.Match], str]]] = [
    (r"\bq\s*(\d+)\s*(?:-|to)\s*(\d+)\s*h(?:ours?|rs?)?\b", lambda m: f"q{m.group(1)}-{m.group(2)}h"),
    (r"\bevery\s+(\d+)\s*(?:-|to)\s*(\d+)\s*h(?:ours?|rs?)\b", lambda m: f"q{m.group(1)}-{m.group(2)}h"),
    (r"\bq\s*(\d+)\s*h(?:ours?|rs?)?\b", _q_hours),
    (r"\bevery\s+(\d+)\s*h(?:ours?|rs?)\b", _q_hours),
    (r"\bevery\s+hour\b|\bhourly\b|\bqh\b", "q1h"),
    (r"\bq\s*(\d+)\s*min(?:utes?)?\b|\bevery\s+(\d+)\s*min(?:utes?)?\b",
     lambda m: f"q{m.group(1) or m.group(2)}min"),
    (rf"\b([1-6]|one|two|three|four)\s*(?:-|to|or)\s*([1-6]|two|three|four|five|six)\s*{_TIMES}\s*{_PER_DAY}",
     lambda m: f"{_per_day_code(m.group(1))}-{_per_day_code(m.group(2))}"),
    (rf"\b([5-9]|1[0-2]|five|six)\s*{_TIMES}\s*{_PER_DAY}", lambda m: f"{_per_day_code(m.group(1))}"),
    (rf"\bqid\b|\b(?:4|four)\s*{_TIMES}\s*{_PER_DAY}", "qid"),
    (rf"\btid\b|\b(?:3|three)\s*{_TIMES}\s*{_PER_DAY}|\bthrice\s+daily\b", "tid"),
    (rf"\bbid\b|\btwice\s*{_PER_DAY}|\b(?:2|two)\s*{_TIMES}\s*{_PER_DAY}"
     rf"|\btwice\b(?!\s*{_PER_WEEK})(?!\s*weekly)", "bid"),
    (r"\bqod\b|\bevery\s+other\s+day\b|\balternate\s+days\b|\bevery\s+second\s+day\b", "qod"),
    (rf"\bbiw\b|\btwice\s*(?:{_PER_WEEK}|weekly)|\b(?:2|two)\s*{_TIMES}\s*(?:{_PER_WEEK}|weekly)", "biw"),
    (rf"\btiw\b|\b(?:3|three)\s*{_TIMES}\s*(?:{_PER_WEEK}|weekly)", "tiw"),
    (rf"\bweekly\b|\bq\s*w(?:k|eek)?\b|\bonce\s*{_PER_WEEK}|\bevery\s+week\b"
     rf"|\b(?:1|one)\s*{_TIMES}\s*{_PER_WEEK}", "weekly"),
    (r"\bevery\s+(\d+)\s+weeks?\b|\bq\s*(\d+)\s*w(?:ee)?ks?\b", _q_weeks),
    (r"\bmonthly\b|\bonce\s*(?:a|per|each|every)\s*month\b|\bevery\s+month\b|\bq\s*(?:1\s*)?mo(?:nth)?\b",
     "monthly"),
    (r"\bevery\s+(\d+)\s+days\b|\bq\s*(\d+)\s*d(?:ays?)?\b", _q_days),
    (r"\bevery\s+(\d+)\s+months?\b|\bq\s*(\d+)\s*mo(?:nths?)?\b", _q_months),
    (r"\bqhs\b|\bhs\b|\bat\s+bed\s*time\b|\bbed\s*time\b|\bnightly\b|\bat\s+night\b|\bevery\s+night\b"
     r"|\beach\s+night\b|\bbefore\s+bed\b|\bnocte\b", "qhs"),
    (r"\bqam\b|\bq\s*am\b|\bevery\s+morning\b|\beach\s+morning\b|\bin\s+the\s+morning\b|\bin\s+am\b"
     r"|\bmornings\b|\bdaily\s+am\b|\bqmorning\b", "qam"),
    (r"\bqpm\b|\bq\s*pm\b|\bevery\s+evening\b|\beach\s+evening\b|\bin\s+the\s+evening\b|\bin\s+pm\b"
     r"|\bevenings\b|\bwith\s+(?:supper|dinner)\b|\bqevening\b", "qpm"),
    (rf"\bdaily\b|\bqd\b|\bq\s*day\b|\bonce\s*{_PER_DAY}|\bevery\s*day\b|\b(?:1|one)\s*{_TIMES}\s*{_PER_DAY}"
     r"|\bper\s+day\b|\ba\s+day\b|\beach\s+day\b|\bqdaily\b", "daily"),
    (r"\bonce\b|\bx\s*1\b|\bone\s+time\b|\bstat\b|\bsingle\s+dose\b", "once"),
]
_FREQ_RE = [(re.compile(p), code) for p, code in _FREQUENCIES]
_TIME_OF_DAY = {"qhs", "qam", "qpm"}

# Timing qualifiers written with a frequency (Latin prescription abbreviations: a.c. ante cibum,
# p.c. post cibum, h.s. hora somni; HL7 v3 TimingEvent / FHIR EventTiming codes below).
_MEALS: list[tuple[str, re.Pattern[str]]] = [
    ("ac hs", re.compile(r"\bac\s*(?:&|and|\+|,|/)?\s*(?:at\s+)?(?:q?hs|bed\s*time)\b"
                         r"|\bbefore\s+meals\s+and\s+(?:at\s+)?bed\s*time\b")),
    ("ac", re.compile(r"\bac\b|\bbefore\s+(?:each\s+|all\s+|a\s+)?meals?\b|\bbefore\s+eating\b")),
    ("pc", re.compile(r"\bpc\b|\bafter\s+(?:each\s+|all\s+|a\s+)?meals?\b|\bafter\s+eating\b")),
    ("with meals", re.compile(r"\bwith\s+(?:each\s+|all\s+|a\s+)?meals?\b")),
    ("with food", re.compile(r"\bwith\s+food\b")),
    ("before breakfast", re.compile(r"\bbefore\s+breakfast\b")),
    ("with breakfast", re.compile(r"\bwith\s+breakfast\b")),
]
_TAPER_RE = re.compile(
    r"\btaper(?:ing|ed)?\b|\bwean(?:ing)?\b|\bthen\s+(?:decrease|reduce|increase)\b"
    r"|\b(?:decrease|reduce|increase)\s+(?:by|to)\b|\b(?:x|for)\s*\d+\s*(?:days?|d|weeks?|wks?)\s*,?\s*then\b"
)
_THEN_RE = re.compile(r"\s*[,;]?\s*\bthen\b\s*")
_DURATION_RE = re.compile(
    r"\b(?:x|for)\s*(\d+)\s*(days?|d|weeks?|wks?|months?)\b(?!\s*supply)"
)
_DURATION_UNIT = {"d": "days", "day": "days", "days": "days", "week": "weeks", "weeks": "weeks",
                  "wk": "weeks", "wks": "weeks", "month": "months", "months": "months"}


def _meal(low: str) -> str:
    for name, regex in _MEALS:
        if regex.search(low):
            return name
    return ""


# HL7 v3 TimingEvent (C-CDA EIVL_TS/event) and FHIR EventTiming codes → qualifier words.
_EVENT_QUALIFIERS = {
    "AC": "ac", "ACM": "before breakfast", "ACD": "before lunch", "ACV": "before dinner",
    "PC": "pc", "PCM": "after breakfast", "PCD": "after lunch", "PCV": "after dinner",
    "C": "with meals", "CM": "with breakfast", "CD": "with lunch", "CV": "with dinner",
    "HS": "hs", "WAKE": "on waking", "MORN": "in the morning", "AFT": "in the afternoon",
    "EVE": "in the evening", "NIGHT": "at night", "ICM": "between meals", "IC": "between meals",
}


def meal_qualifier(code: str) -> str:
    """HL7 v3 TimingEvent / FHIR EventTiming code ("AC", "HS", "PCV") → qualifier; "" if unknown."""
    return _EVENT_QUALIFIERS.get((code or "").strip().upper(), "")


# FHIR "timing abbreviation" value set (GTSAbbreviation) → frequency codes.
_GTS_CODES = {
    "QD": "daily", "BID": "bid", "TID": "tid", "QID": "qid", "AM": "qam", "PM": "qpm", "QOD": "qod",
    "WK": "weekly", "MO": "monthly", "HS": "qhs", "QHS": "qhs", "Q4H": "q4h", "Q6H": "q6h", "Q8H": "q8h",
}
_HOURS_PER = {"s": 1 / 3600, "min": 1 / 60, "h": 1, "d": 24, "wk": 168, "mo": 730, "a": 8760}


def _n(value) -> str:
    text = f"{float(value):g}"
    return text


def frequency_from_period(
    period,
    unit: str,
    *,
    frequency: int | None = 1,
    period_max=None,
    frequency_max: int | None = None,
    institution: bool = False,
    when: tuple[str, ...] | list[str] = (),
) -> str:
    """A structured repeat (FHIR Timing.repeat; C-CDA PIVL_TS period) → the same codes as the text
    parser: "bid", "q8h", "q4-6h", "tiw", "q2w", "monthly", "tid ac". "" when nothing usable.

    ``institution`` is C-CDA PIVL_TS@institutionSpecified: "every 8 hours" then means "three times a
    day at the times the institution sets" (HL7 v3 Data Types R1 §PIVL), i.e. tid.
    """
    try:
        p = float(period)
    except (TypeError, ValueError):
        p = None
    unit = (unit or "").strip().lower()
    freq = int(frequency or 1)
    code = ""
    hours_per = _HOURS_PER.get(unit)
    if p is not None and p > 0 and hours_per is not None:
        hours = p * hours_per
        if institution and freq == 1 and (24 / hours).is_integer() and 1 <= 24 / hours <= 4:
            code = _PER_DAY_CODES[int(24 / hours)]
        elif unit in ("h", "min", "s") and freq == 1:
            if unit == "min":
                code = f"q{_n(p)}min"
            elif period_max:
                code = f"q{_n(p)}-{_n(period_max)}h"
            else:
                code = {24: "daily", 48: "qod", 72: "q3d"}.get(hours, f"q{_n(hours)}h")
        elif unit == "h" and (24 / hours * freq).is_integer() and hours <= 24 and 24 % hours == 0:
            per_day = int(24 / hours * freq)
            code = _PER_DAY_CODES.get(per_day, f"{per_day}x daily")
        elif unit == "d":
            if p == 1:
                code = _PER_DAY_CODES.get(freq, f"{freq}x daily")
                if frequency_max and frequency_max > freq:
                    code = f"{code}-{_PER_DAY_CODES.get(frequency_max, f'{frequency_max}x daily')}"
            elif freq == 1:
                code = {2: "qod", 7: "weekly", 14: "q2w"}.get(p, f"q{_n(p)}d")
            else:
                code = f"{freq}x every {_n(p)} days"
        elif unit == "wk":
            if p == 1:
                code = {1: "weekly", 2: "biw", 3: "tiw"}.get(freq, f"{freq}x weekly")
            elif freq == 1:
                code = f"q{_n(p)}w"
            else:
                code = f"{freq}x every {_n(p)} weeks"
        elif unit == "mo":
            code = ("monthly" if p == 1 else f"q{_n(p)}mo") if freq == 1 else f"{freq}x every {_n(p)} months"
        elif unit == "a":
            code = "yearly" if p == 1 and freq == 1 else f"{freq}x every {_n(p)} years"
        else:
            code = f"{freq}x every {_n(p)} {unit}"
    qualifiers = [q for q in (meal_qualifier(w) for w in when) if q]
    if qualifiers == ["hs"] and code in ("", "daily"):
        return "qhs"
    if qualifiers == ["in the morning"] and code in ("", "daily"):
        return "qam"
    if qualifiers == ["in the evening"] and code in ("", "daily"):
        return "qpm"
    return " ".join([code] + list(dict.fromkeys(qualifiers))).strip() if code or qualifiers else ""


def frequency_from_timing(timing) -> str:
    """FHIR R4 Timing (code and/or repeat) → frequency code; "" if absent. Timing.code uses the
    GTSAbbreviation value set (http://hl7.org/fhir/R4/valueset-timing-abbreviation.html)."""
    if not isinstance(timing, dict):
        return ""
    code_cc = timing.get("code")
    if isinstance(code_cc, dict):
        for coding in code_cc.get("coding") or []:
            code = str((coding or {}).get("code") or "").upper()
            if code in _GTS_CODES:
                return _GTS_CODES[code]
            m = re.fullmatch(r"Q(\d+)H", code)
            if m:
                return normalize_frequency(code)
        text = str(code_cc.get("text") or "")
        if text and normalize_frequency(text):
            return normalize_frequency(text)
    rep = timing.get("repeat")
    if not isinstance(rep, dict):
        return ""
    when = [str(w) for w in (rep.get("when") or []) if isinstance(w, str)]
    try:
        freq = int(rep.get("frequency") or 1)
        freq_max = int(rep["frequencyMax"]) if rep.get("frequencyMax") is not None else None
    except (TypeError, ValueError):
        freq, freq_max = 1, None
    if rep.get("period") is None and not when:
        return ""
    return frequency_from_period(
        rep.get("period"), str(rep.get("periodUnit") or ""), frequency=freq,
        period_max=rep.get("periodMax"), frequency_max=freq_max, when=when,
    )


# Codes that mean the same number of administrations a day, for comparing an EHR list with a
# prescription (q12h and bid are both "twice a day" for reconciliation).
_SAME_AS = {"q24h": "daily", "qd": "daily", "q12h": "bid", "q8h": "tid", "q6h": "qid", "qam": "daily",
            "qpm": "daily"}
_CODE_RE = re.compile(
    r"^(?:daily|bid|tid|qid|qhs|qam|qpm|qod|weekly|biw|tiw|monthly|once|prn|yearly|q\d+(?:-\d+)?(?:h|min|d|w|mo)"
    r"|\d+x daily|(?:daily|bid|tid|qid)-(?:bid|tid|qid|\d+x daily)|weekly:[a-z,]+)"
    r"(?:\s(?:ac hs|ac|pc|hs|with meals|with food|(?:before|after|with) (?:breakfast|lunch|dinner)"
    r"|on waking|in the morning|in the afternoon|in the evening|at night|between meals))*$"
)


def comparable_frequency(value: str) -> str:
    """One key per frequency for comparisons: any code or free text a reader or a user wrote
    ("twice daily", "BID", "q12h", "tid ac") → "bid" / "tid" …; the lowered text when unreadable."""
    text = (value or "").strip().lower()
    if not text:
        return ""
    code = text if _CODE_RE.match(text) else (normalize_frequency(text) or text)
    base = code.split(" ", 1)[0] if not code.startswith(("weekly:",)) and _CODE_RE.match(code) else code
    if base == "qhs":
        return "qhs"
    return _SAME_AS.get(base, base)

_PRN_RE = re.compile(
    r"\bprn\b|\bas\s+needed\b|\bas\s+required\b|\bif\s+needed\b|\bwhen\s+needed\b|\bas\s+necessary\b"
)
_STATUS_RE = [
    ("stopped", re.compile(
        r"^(?:stop(?:ped)?|discontinue[d]?|d/c|dc'?d?|do\s+not\s+take|no\s+longer\s+taking)\b")),
    ("on-hold", re.compile(r"^(?:hold|on\s+hold|held)\b")),
]

# Words that never name a drug by themselves (sig vocabulary, fillers, list headers).
_VOCAB = frozenset(
    """
    take takes taking took give apply inhale use instill inject insert place chew dissolve swallow
    continue resume start started starting new stop stopped discontinue discontinued hold held
    patient pt titrate increase decrease taper wean is are was be
    tab tabs tablet tablets cap caps capsule capsules pill pills puff puffs spray sprays drop drops
    gtt gtts patch patches unit units ml mg mcg gm meq mmol dose doses inhaler inhalation solution
    cream ointment gel lotion suppository injection pen vial syringe susp suspension syrup liquid
    by mouth oral orally po sl sc sq subq im iv top inh neb pr pv td ou topical rectal vaginal
    nasal otic ophthalmic transdermal sublingual subcutaneous intramuscular intravenous inhaled
    daily bid tid qid qhs qam qpm qd qod prn once twice every each other day days week weeks
    weekly month monthly morning evening night nightly bedtime hour hours hr hrs times time
    as needed for with without and or of the a an in on at to per into under before after
    food meals meal water milk empty stomach then until while when if may can
    er xr sr cr dr xl la ec odt ir hcl extended delayed release immediate strength extra regular
    medication medications med meds medicine medicines list home discharge current active
    prescription prescriptions rx sig instructions none no known other others see directed
    left right both eye eyes ear ears nostril nostrils skin area affected wheeze wheezing pain
    """.split()
)
_HEADER_WORDS = frozenset(
    "medication medications med meds medicine medicines list home discharge current active new "
    "changed unchanged continue continued stop stopped prescriptions prescription outpatient "
    "inpatient reconciliation summary the your of and to these".split()
)
_VERBS = frozenset(
    "take takes taking give apply inhale use instill inject insert place chew dissolve continue "
    "resume start started starting new stop stopped discontinue discontinued hold held patient pt "
    "d/c dc".split()
)
_NOT_ALONE = frozenset(
    "sodium chloride hydrochloride hcl sulfate succinate tartrate citrate acetate phosphate "
    "bromide besylate maleate mesylate fumarate water oxygen".split()
)
_SALT_WORDS = frozenset(
    "succinate tartrate hcl hydrochloride sodium potassium calcium magnesium sulfate besylate "
    "maleate mesylate fumarate citrate acetate phosphate bromide chloride er xr sr cr dr xl la ec "
    "odt ir".split()
)


# ---------------------------------------------------------------------------------------------
# Drug dictionary access (lazy: importing drug_named_entity_recognition takes ~2 s)
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _ner() -> ModuleType | None:
    try:
        from drug_named_entity_recognition import drugs_finder
    except Exception:  # package missing or broken: fall back to known_drugs only
        return None
    return drugs_finder


@lru_cache(maxsize=1)
def _canonical_names() -> dict[str, str]:
    """Dictionary canonical key → display name ("estradiol" has no variant entry of its own)."""
    module = _ner()
    if module is None:
        return {}
    data = getattr(module, "drug_canonical_to_data", {}) or {}
    return {key.lower(): (value.get("name") or key) for key, value in data.items()}


@lru_cache(maxsize=50_000)
def _library_exact(phrase: str) -> tuple[str, ...]:
    """Generic names the dictionary gives for exactly this phrase (1–2 words), lowercased."""
    module = _ner()
    if module is None:
        return ()
    tokens = phrase.split()
    names: list[str] = []
    for data, start, end in module.find_drugs(tokens):
        if start == 0 and end == len(tokens):
            names.append(str(data.get("name") or data.get("matching_string") or phrase).lower())
    if not names and phrase in _canonical_names():
        names.append(_canonical_names()[phrase].lower())
    return tuple(dict.fromkeys(names))


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (Levenshtein + adjacent transposition), capped."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _max_typos(word: str) -> int:
    return 1 if len(word) < 8 else 2


@lru_cache(maxsize=20_000)
def _library_fuzzy(word: str) -> tuple[tuple[str, ...], int]:
    """Closest dictionary names by edit distance: (names, distance); ((), 0) if none is close.

    The package's own ``is_fuzzy_match`` ranks by trigram Jaccard and maps "lisinapril" to
    quinapril and misses "metfromin", so candidates come from its trigram index and are ranked by
    edit distance here instead.
    """
    module = _ner()
    if module is None or len(word) < 5:
        return (), 0
    ngram_index = getattr(module, "ngram_to_variant", None)
    variants = getattr(module, "drug_variant_to_canonical", None)
    if not ngram_index or not variants:
        return (), 0
    limit = _max_typos(word)
    shared: Counter[str] = Counter()
    for gram in module.get_ngrams(word):
        for variant in ngram_index.get(gram, ()):
            shared[variant] += 1
    best = limit + 1
    hits: list[str] = []
    for variant, count in shared.items():
        if count < 2 or abs(len(variant) - len(word)) > limit or " " in variant:
            continue
        distance = _osa_distance(word, variant, limit)
        if distance < best:
            best, hits = distance, [variant]
        elif distance == best:
            hits.append(variant)
    if best > limit:
        return (), 0
    canonical = _canonical_names()
    names: list[str] = []
    for variant in hits:
        for key in variants.get(variant, ()):
            names.append(canonical.get(key.lower(), key).lower())
    return tuple(dict.fromkeys(names)), best


# ---------------------------------------------------------------------------------------------
# Parsing one line
# ---------------------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:\(?\d{1,2}[.)]\s+|[-*•·‣◦]+\s*|#\s*\d+[.:)]?\s+)")
_LABEL = re.compile(r"^\s*[A-Za-z][A-Za-z /&-]{1,40}:\s*")
_DOTTED = re.compile(r"\b(?:[a-z]\.){2,4}", re.IGNORECASE)  # p.o. b.i.d. q.h.s. → po bid qhs
_Q_DOT = re.compile(r"\bq\.\s*(?=\d)", re.IGNORECASE)  # q.6h → q6h
_PAREN_NUMBER = re.compile(
    r"\(\s*(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|\d+)\s*\)", re.IGNORECASE
)
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'\-/]*")


@dataclass
class _DrugHit:
    name: str
    confidence: float
    start: int  # character span in the prepared text
    end: int
    surface: str
    candidates: list[str] = field(default_factory=list)


def _prepare(line: str) -> str:
    s = _BULLET.sub("", line.strip(), count=1)
    s = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), s)
    s = _Q_DOT.sub("q", s)
    s = _PAREN_NUMBER.sub(" ", s)
    s = s.replace("½", "1/2")
    s = _GLUED.sub(_unglue, s)
    s = _HOUR_WORDS.sub(lambda m: _NUMBER_WORDS[m.group(1).lower()] + " ", s)
    return re.sub(r"\s+", " ", s).strip()


# "TIDAC", "QIDACHS", "BIDPC", "ACHS": prescription shorthand written without spaces.
_GLUED = re.compile(r"\b(qd|bid|tid|qid|daily|q\d+h)(ac|pc|hs)(hs)?\b|\b(ac|pc)(hs)\b", re.IGNORECASE)


def _unglue(m: re.Match) -> str:
    return " ".join(g for g in m.groups() if g)


_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "twelve": "12", "twenty-four": "24",
                 "twenty four": "24", "forty-eight": "48", "seventy-two": "72"}
_HOUR_WORDS = re.compile(
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty[- ]four|forty-eight|seventy-two)\s+"
    r"(?=(?:hours?|hrs?|days?|weeks?|months?)\b)",
    re.IGNORECASE,
)


def _strip_label(s: str) -> str:
    """Drop a leading "Discharge medications:" / "Sig:" style label."""
    m = _LABEL.match(s)
    if m and not any(ch.isdigit() for ch in m.group(0)):
        words = re.findall(r"[a-z]+", m.group(0).lower())
        if all(w in _VOCAB or w in {"sig", "new", "changed", "unchanged"} for w in words):
            return s[m.end():]
    return s


def normalize_route(text: str) -> str:
    """Route vocabulary for free text or a table 0162 code ("PO" → oral); "" if unknown."""
    low = _prepare(text).lower()
    for name, pattern in _ROUTE_RE:
        if pattern.search(low):
            return name
    return ""


def normalize_frequency(text: str) -> str:
    """Frequency code for free text or an HL7 repeat pattern ("BID", "Q4-6H", "every morning")."""
    low = _prepare(text).lower()
    freq, meal, _conf = _frequency_and_meal(low)
    if freq:
        return f"{freq} {meal}" if meal and meal not in freq else freq
    return "prn" if _PRN_RE.search(low) else ""


def _frequency_and_meal(low: str) -> tuple[str, str, float]:
    """(frequency code, meal qualifier, confidence) for lowered, prepared text; ("", "", 0) if none."""
    found = _frequencies(low)
    meal = _meal(low)
    if "hs" in meal.split() or meal == "ac hs":
        # "tid ac & hs": bedtime is a qualifier of the count, not a second frequency
        counted = [(c, p) for c, p in found if c != "qhs"]
        if counted:
            found = counted
    if not found:
        return "", meal, 0.0
    code = found[0][0]
    if meal == "ac hs" and code == "tid":
        code = "qid"  # three doses before meals and one at bedtime
    confidence = CONF_EXPLICIT if len(found) == 1 else CONF_CONFLICT
    return code, meal, confidence


def _frequencies(low: str) -> list[tuple[str, int]]:
    """All frequency codes found, most specific first, with their start offsets."""
    found: list[tuple[str, int]] = []
    taken: list[tuple[int, int]] = []  # spans already explained by a more specific pattern
    for regex, code in _FREQ_RE:
        for m in regex.finditer(low):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue  # "daily" inside "2 times daily", "once" inside "once daily"
            found.append((code(m) if callable(code) else code, m.start()))
            taken.append(m.span())
            break
    m = _DAYS_RE.search(low) or _FULL_DAY_RE.search(low)
    if m and (m.re is _FULL_DAY_RE or re.search(r"[/-]", m.group("days")) or len(m.group("days")) > 3):
        code = _days_code(m.group("days"))
        if code.count(",") >= 1 or m.re is _FULL_DAY_RE:
            found.insert(0, (code, m.start()))
    codes = [c for c, _ in found]
    if len(set(codes)) > 1:
        # "once daily" also matches "once"; "daily at bedtime" is qhs.
        found = [(c, p) for c, p in found if c != "once"]
        if any(c in _TIME_OF_DAY for c, _ in found):
            found = [(c, p) for c, p in found if c != "daily"]
        if any(c.startswith("weekly:") for c, _ in found):
            found = [(c, p) for c, p in found if c.startswith("weekly:") or c not in {"daily", "weekly"}]
    unique: list[tuple[str, int]] = []
    for code, pos in found:
        if code not in [c for c, _ in unique]:
            unique.append((code, pos))
    return unique


def _unit_text(m: re.Match) -> str:
    unit = _UNIT.get(re.sub(r"\s+", " ", m.group("unit")), "units")
    per = m.group("per")
    if per:
        per_key = re.sub(r"\s+", "", per)
        per_unit = _PER_UNIT.get(per_key, "hr" if per_key.startswith("24") else per_key)
        if per_key.startswith("24"):
            per_unit = "24hr"
        return f"{unit}/{(m.group('per_num') or '').replace(',', '')}{per_unit}"
    return unit


def _dose_text(num: str, form_word: str) -> str:
    num = _WORD_NUM.get(num, num)
    form = next(
        (name for name, p in _DOSE_FORMS.items() if re.fullmatch(p, form_word)), form_word
    )
    singular = num in {"1", "1/2", "0.5", ".5"}
    return f"{num} {form if singular else _PLURAL.get(form, form + 's')}"


def _lookup_known(phrase: str, known: Mapping[str, str] | None) -> str:
    if not known:
        return ""
    return known.get(phrase, "")


def _fuzzy_known(word: str, known: Mapping[str, str] | None) -> tuple[list[str], int]:
    if not known or len(word) < 5:
        return [], 0
    limit = _max_typos(word)
    best, names = limit + 1, []
    for key, value in known.items():
        if " " in key or abs(len(key) - len(word)) > limit:
            continue
        distance = _osa_distance(word, key, limit)
        if distance < best:
            best, names = distance, [value]
        elif distance == best and value not in names:
            names.append(value)
    return (names, best) if best <= limit else ([], 0)


def _tokens(text: str, offset: int = 0) -> list[tuple[str, int, int]]:
    return [(m.group(0).lower(), m.start() + offset, m.end() + offset) for m in _TOKEN.finditer(text)]


def _find_drug(
    prepared: str, region: tuple[int, int], known: Mapping[str, str] | None, *, fuzzy: bool = True
) -> _DrugHit | None:
    start, end = region
    tokens = [t for t in _tokens(prepared[start:end], start)]
    # Skip leading verbs ("take", "continue", "stop").
    while tokens and tokens[0][0] in _VERBS:
        tokens = tokens[1:]
    # 1. Exact: catalog (up to 4 words), then dictionary (2 words, then 1), earliest position wins.
    for i in range(len(tokens)):
        for n in (4, 3, 2, 1):
            if i + n > len(tokens):
                continue
            words = [t[0] for t in tokens[i:i + n]]
            if n == 1 and (words[0] in _VOCAB or words[0] in _NOT_ALONE or len(words[0]) < 3):
                continue
            phrase = " ".join(words)
            span = (tokens[i][1], tokens[i + n - 1][2])
            surface = prepared[span[0]:span[1]]
            name = _lookup_known(phrase, known)
            hit = None
            if name:
                hit = _DrugHit(name, CONF_KNOWN, *span, surface)
            elif n <= 2:
                names = _library_exact(phrase)
                if n == 2 and names and not set(names[0].split()) & set(words):
                    # "docusate sodium" → "dioctyl sulfosuccinic acid": keep the familiar name.
                    single = _library_exact(words[0])
                    if single and single[0] == words[0]:
                        names = single
                if names:
                    conf = CONF_EXACT if len(names) == 1 else CONF_AMBIGUOUS_EXACT
                    hit = _DrugHit(names[0], conf, *span, surface, list(names[1:]))
            if hit:
                return _with_partner(prepared, tokens[i + n:], hit, known)
        # 2. Combination written with "/" or "-": every part must match exactly.
        word = tokens[i][0]
        parts = [p for p in re.split(r"[/-]", word) if p]
        if len(parts) > 1 and all(len(p) >= 3 for p in parts):
            resolved = [_exact_name(p, known) for p in parts]
            if all(resolved):
                return _DrugHit("/".join(resolved), CONF_COMBO, tokens[i][1], tokens[i][2],
                                prepared[tokens[i][1]:tokens[i][2]])
    # 3. Fuzzy (typos), catalog first: only the first word of the name region, and only when the
    #    line looks like a medication line (has sig details) or is that single word.
    if fuzzy and tokens:
        word, s, e = tokens[0]
        if word in _VOCAB or len(word) < 5 or not word.isalpha():
            return None
        names, distance = _fuzzy_known(word, known)
        if not names:
            found, distance = _library_fuzzy(word)
            names = list(found)
        if names:
            if len(names) > 1:
                conf = CONF_FUZZY_AMBIGUOUS
            else:
                conf = CONF_FUZZY_1 if distance <= 1 else CONF_FUZZY_2
            return _DrugHit(names[0], conf, s, e, prepared[s:e], names[1:])
    return None


def _exact_name(phrase: str, known: Mapping[str, str] | None) -> str:
    return _lookup_known(phrase, known) or (_library_exact(phrase) or ("",))[0]


def _with_partner(
    prepared: str, rest: list[tuple[str, int, int]], hit: _DrugHit, known: Mapping[str, str] | None
) -> _DrugHit:
    """"acetaminophen and codeine", "bupivacaine with epinephrine": one combination product."""
    if len(rest) < 2 or rest[0][0] not in {"and", "with", "plus"}:
        return hit
    for n in (2, 1):
        if len(rest) < 1 + n:
            continue
        phrase = " ".join(t[0] for t in rest[1:1 + n])
        if n == 1 and phrase in _VOCAB:
            continue
        partner = _exact_name(phrase, known)
        if partner:
            end = rest[n][2]
            return _DrugHit(f"{hit.name}/{partner}", min(hit.confidence, CONF_COMBO), hit.start, end,
                            prepared[hit.start:end])
    return hit


def parse_sig(line: str, *, known_drugs: Mapping[str, str] | None = None) -> ParsedSig:
    """Parse one medication line. Never raises; unknown parts stay empty."""
    result = ParsedSig(text=line)
    prepared = _strip_label(_prepare(line or ""))
    low = prepared.lower()
    if len(low) != len(prepared):  # rare Unicode case change altered the length
        prepared = low
    if not low:
        result.confidence["drug"] = 0.0
        return result
    known = {k.lower(): v for k, v in known_drugs.items()} if known_drugs else None

    for status, regex in _STATUS_RE:
        if regex.search(low):
            result.status = status

    marks: list[int] = []  # where sig elements start: the drug name must come before them

    # Strength: first number + mass-like unit ("500 mg", "90 mcg/actuation"). Bare volumes
    # ("10 mL") are doses, not strengths.
    strength_span: tuple[int, int] | None = None
    for m in _STRENGTH.finditer(low):
        if m.group("unit") in {"ml", "l"} and not m.group("per"):
            continue
        num = m.group("num").replace(",", "")
        if m.group("num2"):
            num = f"{num}{m.group('sep')}{m.group('num2').replace(',', '')}"
        result.strength, result.unit = num, _unit_text(m)
        strength_span = m.span()
        marks.append(m.start())
        break

    # Dose: a count of dose forms ("1 tab", "2 puffs", "10 mL"), outside the strength text.
    masked = low
    if strength_span:
        start, end = strength_span
        masked = low[:start] + " " * (end - start) + low[end:]
    dose_match = _DOSE.search(masked)
    if dose_match:
        result.dose = _dose_text(dose_match.group("num"), dose_match.group("form"))
        marks.append(dose_match.start())
    elif result.unit == "units":
        result.dose = f"{result.strength} units"

    # Product form ("10 mg tab", "inhaler", "ER tablet").
    form_pos = None
    for name, regex in _FORM_RE:
        m = regex.search(low)
        if m and (form_pos is None or m.start() < form_pos):
            result.form, form_pos = name, m.start()
    if form_pos is not None:
        marks.append(form_pos)
    dose_form = ""
    if dose_match:
        dose_form = result.dose.split(" ", 1)[1].rstrip("s") if " " in result.dose else ""

    # Route: explicit words first; otherwise implied by the dose form, with less confidence.
    routes: list[tuple[str, int]] = []
    for name, regex in _ROUTE_RE:
        m = regex.search(low)
        if m:
            routes.append((name, m.start()))
    if routes:
        routes.sort(key=lambda r: r[1])
        distinct = list(dict.fromkeys(r[0] for r in routes))
        if "inhaled" in distinct and "oral" in distinct:  # "oral inhaler", "inhale by mouth"
            distinct.remove("oral")
        result.route = distinct[0]
        result.confidence["route"] = CONF_EXPLICIT if len(distinct) == 1 else CONF_CONFLICT
        marks.append(routes[0][1])
    else:
        implied = _IMPLIED_ROUTE.get(dose_form) or _IMPLIED_ROUTE.get(result.form, "")
        if implied:
            result.route = implied
            result.confidence["route"] = CONF_IMPLIED

    # Frequency and PRN.
    freqs = _frequencies(low)
    prn = _PRN_RE.search(low)
    if prn:
        result.as_needed = True
        marks.append(prn.start())
        result.indication = _indication(low[prn.end():])
    taper = bool(_TAPER_RE.search(low)) or len(_THEN_RE.split(low)) > 2
    if taper:
        result.taper = True
        result.steps = [step.strip(" ,;.") for step in _THEN_RE.split(prepared) if step.strip(" ,;.")]
        first = result.steps[0].lower() if result.steps else low
        step_freq, step_meal, _c = _frequency_and_meal(first)
        result.notes.append(
            f"taper or changing schedule in {len(result.steps)} steps: the frequency is the first step's;"
            " read the whole text"
        )
    duration = _DURATION_RE.search(low)
    if duration:
        result.duration = f"{duration.group(1)} {_DURATION_UNIT.get(duration.group(2), duration.group(2))}"
    if freqs:
        code, meal, confidence = _frequency_and_meal(low)
        result.frequency, result.meal = code, meal
        result.confidence["frequency"] = confidence
        if result.frequency.startswith("weekly:") and len(freqs) == 1:
            result.confidence["frequency"] = 0.85
        if taper:
            result.frequency = step_freq or code
            result.meal = step_meal or meal
            result.confidence["frequency"] = CONF_TAPER
        marks.extend(p for _, p in freqs)
    elif prn:
        result.frequency = "prn"
        result.confidence["frequency"] = CONF_EXPLICIT
    if not result.meal:
        result.meal = _meal(low)
    if not result.indication:
        m = re.search(r"\bfor\s+(?!\d)([a-z][a-z '/-]+)$", low)
        if m:
            result.indication = _indication(m.group(1))
            marks.append(m.start())

    if strength_span:
        # Strength right after the drug name is the usual layout; after the dose or route
        # ("take 2 tabs (1000 mg)") it may be a total, and with no name before it, unanchored.
        start = strength_span[0]
        sig_before = any(p < start for p in marks)
        result.confidence["strength"] = 0.85 if sig_before or not low[:start].strip() else CONF_EXPLICIT

    # Drug: words before the first sig element (or anywhere, if the line starts with the sig).
    region_end = min([p for p in marks if p > 0], default=len(low))
    comma = low.find(",")
    if 0 < comma < region_end:
        region_end = comma
    has_sig = bool(marks)
    single_word = len(_tokens(prepared)) == 1
    hit = _find_drug(prepared, (0, region_end), known, fuzzy=has_sig or single_word)
    if hit is None and region_end < len(low):
        hit = _find_drug(prepared, (region_end, len(low)), known, fuzzy=False)
    region_tokens = [t for t in _tokens(prepared[:region_end]) if t[0] not in _VERBS]
    if hit:
        result.drug = hit.name
        result.candidates = hit.candidates
        result.confidence["drug"] = hit.confidence
        if region_tokens and region_tokens[0][1] <= hit.start < region_end:
            result.drug_text = prepared[region_tokens[0][1]:region_end].strip(" ,;:-(")
        else:
            result.drug_text = _extend_with_salts(prepared, hit)
        surface = hit.surface.lower()
        if (hit.confidence >= REVIEW_THRESHOLD and "/" not in hit.name
                and hit.name.lower() not in surface and surface not in hit.name.lower()):
            result.brand = hit.surface
    else:
        result.confidence["drug"] = 0.0
        if region_tokens:
            result.drug_text = prepared[region_tokens[0][1]:region_end].strip(" ,;:-(")
    _say_what_was_not_read(result)
    return result


def _say_what_was_not_read(result: ParsedSig) -> None:
    if result.unreadable:
        result.notes.append(f"directions not read, kept as written: {result.text.strip()!r}")
    elif not result.frequency and (result.dose or result.strength or result.route):
        result.notes.append("no frequency read: see the directions as written")
        result.confidence["frequency"] = 0.0


def parse_directions(text: str) -> ParsedSig:
    """Directions without a drug name (FHIR dosage.text, a C-CDA free-text SIG, HL7 TQ1 text):
    the same parser, with the drug field ignored. ``unreadable`` and ``notes`` say what was not read;
    ``text`` always keeps the original."""
    parsed = parse_sig(text or "")
    parsed.confidence.pop("drug", None)
    return parsed


def _extend_with_salts(prepared: str, hit: _DrugHit) -> str:
    """Drug words as written: the match plus following salt / release words ("succinate ER")."""
    end = hit.end
    for word, _s, e in _tokens(prepared[hit.end:], hit.end):
        if word in _SALT_WORDS and prepared[end:_s].strip() == "":
            end = e
        else:
            break
    return prepared[hit.start:end]


_INDICATION_STOP = re.compile(r"[\d,;.()]")


def _indication(text: str) -> str:
    """Words after PRN / "as needed for" up to the next sig element."""
    text = re.sub(r"^\s*(?:for|of)\s+", "", text)
    m = _INDICATION_STOP.search(text)
    if m:
        text = text[: m.start()]
    words: list[str] = []
    for word in text.split():
        if word in {"po", "bid", "tid", "qid", "qhs", "daily", "q4h", "q6h", "q8h", "every",
                    "may", "max", "not", "do", "take", "repeat", "up", "x"}:
            break
        if re.match(r"q\d", word):
            break
        words.append(word)
    return " ".join(words).strip(" -/")


# ---------------------------------------------------------------------------------------------
# Splitting a list
# ---------------------------------------------------------------------------------------------

_SEPARATOR = re.compile(r"[,;]|\s+and\s+|\s+&\s+|\s+plus\s+", re.IGNORECASE)
_INLINE_NUMBER = re.compile(r"(?<=\S)\s+(?=\(?\d{1,2}[.)]\s+[A-Za-z])")


def _starts_with_drug(fragment: str, known: Mapping[str, str] | None) -> bool:
    tokens = [t for t in _tokens(_prepare(fragment)) if t[0] not in _VERBS]
    if not tokens:
        return False
    first = tokens[0][0]
    if first in _VOCAB:
        return False
    phrases = [first]
    if len(tokens) > 1:
        phrases.insert(0, f"{first} {tokens[1][0]}")
    for phrase in phrases:
        if _lookup_known(phrase, known) or _library_exact(phrase):
            return True
    parts = [p for p in re.split(r"[/-]", first) if len(p) >= 3]
    return len(parts) > 1 and all(_lookup_known(p, known) or _library_exact(p) for p in parts)


def _unknown_word_with_strength(fragment: str) -> bool:
    """An unrecognised leading word followed by a strength ("Zorbex 50 mg daily")."""
    prepared = _prepare(fragment).lower()
    tokens = [t for t in _tokens(prepared) if t[0] not in _VERBS]
    if not tokens or tokens[0][0] in _VOCAB or not tokens[0][0][0].isalpha():
        return False
    return bool(_STRENGTH.search(prepared[tokens[0][2]:]))


def _split_line(line: str, known: Mapping[str, str] | None) -> list[str]:
    pieces: list[str] = []
    last = 0
    for m in _SEPARATOR.finditer(line):
        before = line[: m.start()]
        if before.count("(") > before.count(")"):
            continue  # inside parentheses
        if m.group(0) == "," and re.search(r"\d$", before) and re.match(r"\d{3}(?!\d)", line[m.end():]):
            continue  # thousands separator: "1,000 units"
        fragment = line[m.end():]
        is_and = m.group(0).strip().lower() in {"and", "&", "plus"}
        if is_and:
            # "acetaminophen and codeine 300-30 mg" is one product: split on "and" only after a
            # complete item ("metformin 500 mg bid and lisinopril 10 mg daily").
            new_item = _has_sig_detail(line[last: m.start()]) and _starts_with_drug(fragment, known)
        else:
            new_item = _starts_with_drug(fragment, known) or _unknown_word_with_strength(
                _next_piece(fragment)
            )
        if new_item:
            pieces.append(line[last: m.start()])
            last = m.end()
    pieces.append(line[last:])
    return [p.strip(" ,;") for p in pieces if p.strip(" ,;")]


def _has_sig_detail(text: str) -> bool:
    low = _prepare(text).lower()
    return bool(
        _STRENGTH.search(low) or _DOSE.search(low) or _frequencies(low)
        or any(regex.search(low) for _, regex in _ROUTE_RE)
    )


def _next_piece(text: str) -> str:
    m = _SEPARATOR.search(text)
    return text[: m.start()] if m else text


def _is_header(fragment: str) -> bool:
    prepared = _prepare(fragment)
    if not prepared:
        return True
    if any(ch.isdigit() for ch in prepared):
        return False
    words = re.findall(r"[a-z]+", prepared.lower())
    return prepared.endswith(":") or all(w in _HEADER_WORDS for w in words)


def _items(text: str, known: Mapping[str, str] | None) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INLINE_NUMBER.sub("\n", text)
    items: list[str] = []
    for raw_line in text.split("\n"):
        line = _strip_label(_BULLET.sub("", raw_line.strip(), count=1)).strip()
        if not line or _is_header(line):
            continue
        for i, piece in enumerate(_split_line(line, known)):
            continuation = (
                i == 0 and items and not _starts_with_drug(piece, known)
                and _looks_like_continuation(piece)
            )
            if continuation:
                items[-1] = f"{items[-1]} {piece}"
            else:
                items.append(piece)
    return items


def _looks_like_continuation(piece: str) -> bool:
    """A line that carries only sig details ("take 1 tab twice daily", "with food")."""
    tokens = _tokens(_prepare(piece))
    if not tokens or piece.strip()[:1].isdigit():
        return True
    return tokens[0][0] in _VOCAB


def parse_medication_list(
    text: str, *, known_drugs: Mapping[str, str] | None = None
) -> list[ParsedSig]:
    """Split a free-text list (commas, semicolons, newlines, "and", numbered items) and parse each.

    Separators only split where the next piece starts with a drug name (or an unknown word
    followed by a strength), so "take with food, 2 tablets" stays one item. Header lines such as
    "Discharge medications:" are dropped.
    """
    if not text or not text.strip():
        return []
    known = {k.lower(): v for k, v in known_drugs.items()} if known_drugs else None
    return [parse_sig(item, known_drugs=known) for item in _items(text, known)]
