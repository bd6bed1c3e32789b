"""Patient matching for inbound EHR data: identifier + assigning authority first, then name +
birth date (+ sex) with a score. Ambiguous or missing matches go to a person (PatientMatchItem).

``score_candidate`` is pure; ``patient_match`` reads the database (no writes)."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from django.db.models import Q

from pharmacy.interop.clinical import PatientData
from pharmacy.models import Patient

from .choices import MatchOutcome
from .conf import conf
from .models import EhrLink


@dataclass
class MatchResult:
    outcome: str
    patient: Patient | None = None
    score: float = 0.0
    ehr_system: str = ""
    external_id: str = ""
    candidates: list[dict] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    link: EhrLink | None = None  # the EHR link that matched, when it was one


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum())


def score_candidate(
    data: PatientData, *, first_name: str, last_name: str, birth_date, sex: str
) -> tuple[float, list[str]]:
    """0–1: birth date 0.4, family name 0.3, given name 0.2 (0.05 for the same initial only), sex 0.1.

    With the default threshold 0.9, a probable match needs birth date, family and given name;
    an initial alone (0.85 at most) leaves the choice to a person."""
    score, reasons = 0.0, []
    if data.birth_date and data.birth_date == birth_date:
        score += 0.4
        reasons.append("same birth date")
    if data.family and _fold(data.family) == _fold(last_name):
        score += 0.3
        reasons.append("same family name")
    given = _fold((data.given or "").split(" ")[0])
    if given and given == _fold(first_name.split(" ")[0] if first_name else ""):
        score += 0.2
        reasons.append("same given name")
    elif given and first_name and given[:1] == _fold(first_name)[:1]:
        score += 0.05
        reasons.append("same first initial")
    if data.sex and sex and data.sex.upper()[:1] == sex.upper()[:1]:
        score += 0.1
        reasons.append("same sex")
    return round(score, 2), reasons


def ehr_system_for(data: PatientData | None, sender: str) -> tuple[str, str]:
    """(assigning authority, external id) for the patient's main identifier (MR first)."""
    if data is not None:
        idents = sorted(data.identifiers, key=lambda i: (i.type not in ("MR", "MRN", ""), i.type == "SS"))
        for ident in idents:
            if ident.value and ident.type != "SS":
                return (ident.assigning_authority or sender.partition("^")[2] or sender or "unknown")[:200], ident.value
    return (sender.partition("^")[2] or sender or "unknown")[:200], ""


def patient_match(*, data: PatientData | None, sender: str = "") -> MatchResult:
    if data is None:
        return MatchResult(outcome=MatchOutcome.NONE, reasons=["the message names no patient"])
    ehr_system, external_id = ehr_system_for(data, sender)
    # 1. Identifier with its assigning authority: an existing EHR link, or the pharmacy's own MRN
    #    when the authority is the patient's facility.
    for ident in data.identifiers:
        if not ident.value or ident.type == "SS":
            continue
        authority = ident.assigning_authority or ehr_system
        link = EhrLink.objects.select_related("patient").filter(ehr_system=authority, external_id=ident.value).first()
        if link is not None:
            return MatchResult(outcome=MatchOutcome.EXACT, patient=link.patient, score=1.0, ehr_system=authority,
                               external_id=ident.value, reasons=[f"EHR link {authority}:{ident.value}"], link=link)
        by_mrn = list(Patient.objects.filter(mrn=ident.value).filter(
            Q(facility__code__iexact=authority) | Q(facility__name__iexact=authority))[:2])
        if len(by_mrn) == 1:
            return MatchResult(outcome=MatchOutcome.EXACT, patient=by_mrn[0], score=1.0, ehr_system=authority,
                               external_id=ident.value, reasons=[f"MRN {ident.value} at {authority}"])
    # 2. Name + birth date (+ sex).
    if not (data.birth_date and data.family):
        return MatchResult(outcome=MatchOutcome.NONE, ehr_system=ehr_system, external_id=external_id,
                           reasons=["no identifier match and no name with birth date to compare"])
    rows = Patient.objects.filter(birth_date=data.birth_date).only(
        "id", "first_name", "last_name", "birth_date", "sex", "mrn")[:200]
    scored = []
    for p in rows:
        score, reasons = score_candidate(data, first_name=p.first_name, last_name=p.last_name,
                                         birth_date=p.birth_date, sex=p.sex)
        if score >= 0.7:
            scored.append((score, p, reasons))
    scored.sort(key=lambda row: (-row[0], row[1].pk))
    candidates = [{"patient_id": p.pk, "name": f"{p.last_name}, {p.first_name}", "mrn": p.mrn,
                   "birth_date": p.birth_date.isoformat(), "score": s, "reasons": r} for s, p, r in scored[:10]]
    threshold = conf("RECON_MATCH_THRESHOLD")
    strong = [row for row in scored if row[0] >= threshold]
    if len(strong) == 1 and (len(scored) == 1 or scored[1][0] < threshold):
        score, patient, reasons = strong[0]
        return MatchResult(outcome=MatchOutcome.PROBABLE, patient=patient, score=score, ehr_system=ehr_system,
                           external_id=external_id, candidates=candidates, reasons=reasons)
    if len(scored) >= 2 or len(strong) > 1:
        return MatchResult(outcome=MatchOutcome.AMBIGUOUS, ehr_system=ehr_system, external_id=external_id,
                           candidates=candidates, reasons=[f"{len(scored)} patients share the name and birth date"])
    return MatchResult(outcome=MatchOutcome.NONE, ehr_system=ehr_system, external_id=external_id,
                       candidates=candidates, reasons=["no patient with this name and birth date"])
