"""Refill requests from patients and pet owners as free text (SMS, e-mail, portal).

``POST /api/v1/refill-requests/intake/`` → :func:`intake_receive`: the message is stored first
(``IntakeMessage``), the sender is matched to patients by phone or e-mail (for a pet owner: the
owner's animals), the medication is matched against those patients' active prescriptions —
generic names, brand names (drug catalog), the offline dictionary of the
``drug-named-entity-recognition`` package (synonyms, other brands) and misspellings (difflib) —
and a request is opened through ``refills.services`` with its match confidence. A message that
is ambiguous or matches nothing stays in the triage list (status triage, with the reason and the
candidates) for staff, who assign it to a prescription (:func:`intake_assign`) or dismiss it
with a reason (:func:`intake_dismiss`). Nothing is dropped.

The matching itself (:func:`match_medication`, :func:`decide_intake`) is pure: plain candidates
in, a decision with its reasons out.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from difflib import SequenceMatcher
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.events import record_event
from pharmacy.actors import Actor, save_with_history, system_actor
from pharmacy.errors import DomainError, TransitionNotAllowed
from pharmacy.models import Patient, Prescription
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, require_role
from pharmacy.scoping import is_partner, scope_patients, scope_to_pharmacy
from pharmacy.validators import normalize_phone

from . import services
from .choices import IntakeStatus, RequestSource
from .models import IntakeMessage, RefillRequest

log = logging.getLogger(__name__)

INTAKE = system_actor("system:patient-intake")
#: A medication match at least this good opens a request by itself; below it a person decides.
AUTO_OPEN_SCORE = 0.75
#: Scores for how a word matched a prescription's drug.
EXACT_SCORE = {"generic": 1.0, "brand": 1.0, "synonym": 0.95}
FUZZY_MIN_RATIO = 0.8  # difflib ratio for a misspelling to count
FUZZY_WEIGHT = 0.9  # a misspelling is never as sure as the exact word
MIN_FUZZY_LEN = 4
#: Salt and form words that do not identify a drug on their own.
NON_IDENTIFYING = frozenset({
    "and", "with", "sodium", "potassium", "calcium", "hydrochloride", "hcl", "succinate", "tartrate", "acetate",
    "sulfate", "human", "regular", "isophane", "modified", "extended", "release", "tablet", "capsule", "oral",
    "acid", "mofetil", "monohydrate", "hyclate", "pamoate", "fumarate", "propionate", "cypionate", "carbonate",
    "disoproxil", "alafenamide", "suspension", "zinc", "porcine", "insulin",
})
#: Everyday words never taken for a misspelled drug name.
STOPWORDS = frozenset({
    "please", "refill", "refills", "refilled", "need", "needs", "more", "the", "for", "and", "pills", "pill",
    "medicine", "medication", "medications", "meds", "prescription", "prescriptions", "thanks", "thank", "could",
    "would", "with", "this", "that", "have", "has", "her", "his", "him", "she", "they", "them", "their", "about",
    "again", "when", "what", "will", "your", "from", "just", "some", "also", "today", "tomorrow", "week",
    "morning", "evening", "pharmacy", "doctor", "vet", "dog", "cat", "puppy", "kitty", "tablets", "tabs",
    "running", "almost", "nearly", "left", "ready", "pick", "pickup", "call", "called", "hello", "hi",
})
#: Short forms, abbreviations and (veterinary) brands people write for a generic (pharmacy shorthand;
#: ISMP list of error-prone abbreviations for HCTZ). Several expansions: the sender's prescriptions decide.
SHORT_FORMS: dict[str, tuple[str, ...]] = {
    "phenobarb": ("phenobarbital",), "pheno": ("phenobarbital",), "levo": ("levothyroxine", "levetiracetam"),
    "hctz": ("hydrochlorothiazide",), "metacam": ("meloxicam",), "rimadyl": ("carprofen",),
    "apoquel": ("oclacitinib",), "heartgard": ("ivermectin",), "nexgard": ("afoxolaner",),
    "bravecto": ("fluralaner",), "vetmedin": ("pimobendan",), "proin": ("phenylpropanolamine",),
    "soloxine": ("levothyroxine",), "thyro-tabs": ("levothyroxine",), "keppra": ("levetiracetam",),
    "gaba": ("gabapentin",), "pred": ("prednisone", "prednisolone"), "amox": ("amoxicillin",),
    "clavamox": ("amoxicillin",), "baytril": ("enrofloxacin",), "enro": ("enrofloxacin",),
    "kbr": ("potassium bromide",), "tapazole": ("methimazole",), "synthroid": ("levothyroxine",),
    "lasix": ("furosemide",), "coumadin": ("warfarin",), "asa": ("aspirin",), "apap": ("acetaminophen",),
    "mtx": ("methotrexate",), "ntg": ("nitroglycerin",), "kcl": ("potassium chloride",),
}
SHORT_FORM_SCORE = 0.95
PREFIX_SCORE = 0.85  # "phenobarb" for phenobarbital: a person's short form, still a person's word
MIN_PREFIX_LEN = 5
REFILL_WORDS = re.compile(r"\b(refill\w*|renew\w*|more (?:of )?(?:my|his|her)|run(?:ning)? out|ran out|out of)\b",
                          re.IGNORECASE)
WORD = re.compile(r"[a-z][a-z0-9\-]*")


# --- the offline drug dictionary -------------------------------------------------------------------

@lru_cache(maxsize=1)
def _dictionary():
    """The drug-named-entity-recognition package's dictionary (loaded once, ~3 s); None when the
    package is not installed — matching then uses the catalog's names and brands only."""
    try:
        from drug_named_entity_recognition import drugs_finder
    except Exception:  # noqa: BLE001 — optional at run time
        log.warning("drug-named-entity-recognition is not available; intake matches catalog names only")
        return None
    return drugs_finder


_SYNONYM_SHAPE = re.compile(r"[a-z][a-z\-]{3,30}(?: [a-z][a-z\-]{2,30})?")


@lru_cache(maxsize=2048)
def dictionary_synonyms(generic: str) -> tuple[str, ...]:
    """Other names of a generic drug in the offline dictionary (brands, spellings), filtered to
    plain one- or two-word names."""
    finder = _dictionary()
    if finder is None or not generic:
        return ()
    names = {generic.lower()}
    first = generic.lower().split()[0]
    if first not in NON_IDENTIFYING:
        names.add(first)
    found = set()
    for name in names:
        for canonical in finder.drug_variant_to_canonical.get(name, []):
            for syn in finder.drug_canonical_to_data.get(canonical, {}).get("synonyms", []):
                if _SYNONYM_SHAPE.fullmatch(syn) and syn != name:
                    found.add(syn)
    return tuple(sorted(found))


def dictionary_mentions(words: list[str]) -> list[str]:
    """Drug names the offline dictionary recognises in the words (exact, at least 5 letters)."""
    finder = _dictionary()
    if finder is None:
        return []
    out = []
    for word in words:
        if len(word) < 5 or word in STOPWORDS:
            continue
        for canonical in finder.drug_variant_to_canonical.get(word, []):
            name = finder.drug_canonical_to_data.get(canonical, {}).get("name") or canonical
            if name.lower() not in out:
                out.append(name.lower())
    return out


# --- pure matching -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """An active prescription of a patient the sender may be (plain data)."""

    prescription_id: int
    patient_id: int
    patient_name: str  # first name (the animal's name for a pet)
    is_animal: bool
    drug_name: str  # generic
    brand_names: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()  # from the offline dictionary


@dataclass(frozen=True)
class MedicationMatch:
    prescription_id: int
    patient_id: int
    score: float
    how: str  # generic | brand | synonym | fuzzy | none
    term: str = ""  # the name it matched
    word: str = ""  # the word in the message


@dataclass
class IntakeDecision:
    matches: list[MedicationMatch]  # requests to open (empty → triage)
    reason: str  # why it goes to triage, or how it matched
    confidence: float
    candidates: list[dict] = field(default_factory=list)  # every candidate with its score, best first
    mentions: list[str] = field(default_factory=list)  # drug names recognised in the text


def words_of(text: str) -> list[str]:
    return WORD.findall((text or "").lower())


def _terms(c: Candidate) -> dict[str, str]:
    terms: dict[str, str] = {}
    generic = c.drug_name.lower().strip()
    terms[generic] = "generic"
    for part in re.split(r"[\s/,]+", generic):
        if len(part) >= 5 and part not in NON_IDENTIFYING:
            terms.setdefault(part, "generic")
    for brand in c.brand_names:
        terms.setdefault(brand.lower().strip(), "brand")
    for syn in c.synonyms:
        terms.setdefault(syn.lower().strip(), "synonym")
    return {t: how for t, how in terms.items() if t}


def match_medication(words: list[str], c: Candidate) -> MedicationMatch:
    """How well the message's words name this candidate's drug (best word wins)."""
    grams = list(words) + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    best = MedicationMatch(c.prescription_id, c.patient_id, 0.0, "none")
    generic = c.drug_name.lower().strip()
    generic_words = [w for w in re.split(r"[\s/,-]+", generic) if w]
    for word in words:
        for expansion in SHORT_FORMS.get(word, ()):
            if expansion == generic or expansion in generic_words or generic.startswith(expansion):
                if SHORT_FORM_SCORE > best.score:
                    best = MedicationMatch(c.prescription_id, c.patient_id, SHORT_FORM_SCORE, "short form",
                                           expansion, word)
        if (len(word) >= MIN_PREFIX_LEN and word not in STOPWORDS and word not in NON_IDENTIFYING
                and any(g.startswith(word) and g != word for g in generic_words) and PREFIX_SCORE > best.score):
            best = MedicationMatch(c.prescription_id, c.patient_id, PREFIX_SCORE, "short form", generic, word)
    for term, how in _terms(c).items():
        for gram in grams:
            if gram == term:
                score = EXACT_SCORE[how]
                if score > best.score:
                    best = MedicationMatch(c.prescription_id, c.patient_id, score, how, term, gram)
                continue
            if (len(gram) < MIN_FUZZY_LEN or len(term) < MIN_FUZZY_LEN or gram in STOPWORDS
                    or (" " in term) != (" " in gram) or abs(len(gram) - len(term)) > 3):
                continue
            ratio = SequenceMatcher(None, gram, term).ratio()
            if ratio >= FUZZY_MIN_RATIO:
                score = round(ratio * FUZZY_WEIGHT * (1.0 if how != "synonym" else 0.97), 3)
                if score > best.score:
                    best = MedicationMatch(c.prescription_id, c.patient_id, score, "fuzzy", term, gram)
    return best


def decide_intake(text: str, candidates: list[Candidate], *, mentions: list[str] | None = None) -> IntakeDecision:
    """Which prescriptions the message asks for, or why a person must decide.

    Opens requests only when every drug named matches exactly one prescription with a score of at
    least AUTO_OPEN_SCORE; a pet's (or family member's) name in the message picks among patients
    sharing the contact. Several drugs named → one request each."""
    words = words_of(text)
    mentions = mentions or []
    scored = sorted((match_medication(words, c) for c in candidates), key=lambda m: -m.score)
    by_id = {c.prescription_id: c for c in candidates}
    listing = [{**asdict(m), "patient": by_id[m.prescription_id].patient_name,
                "drug": by_id[m.prescription_id].drug_name} for m in scored]
    if not candidates:
        return IntakeDecision([], "The sender's patients have no active prescriptions.", 0.0, listing, mentions)
    named = {c.patient_id for c in candidates if _names_patient(words, c.patient_name)}
    hits = [m for m in scored if m.score >= AUTO_OPEN_SCORE]
    if named and hits:
        in_named = [m for m in hits if m.patient_id in named]
        if not in_named:
            who = ", ".join(sorted({by_id[m.prescription_id].patient_name for m in hits}))
            return IntakeDecision([], f"The message names a patient whose prescriptions do not match; the drug "
                                      f"matches {who}'s.", 0.0, listing, mentions)
        hits = in_named
    if not hits:
        near = [m for m in scored if m.score >= 0.6]
        if near:
            return IntakeDecision([], f"Unsure medication match ({near[0].word!r} ~ {near[0].term}); please confirm.",
                                  near[0].score, listing, mentions)
        if mentions:
            return IntakeDecision([], f"The message names {', '.join(mentions)}, which is not among the active "
                                      "prescriptions of the sender's patients.", 0.0, listing, mentions)
        if len(candidates) == 1 and REFILL_WORDS.search(text or ""):
            return IntakeDecision([], "No medication named; the patient has one active prescription — confirm it.",
                                  0.5, listing, mentions)
        return IntakeDecision([], "No medication in the message matches an active prescription.", 0.0, listing,
                              mentions)
    # One drug name matching several prescriptions (two pets on carprofen, family members) is ambiguous.
    by_term: dict[str, list[MedicationMatch]] = {}
    for m in hits:
        by_term.setdefault(by_id[m.prescription_id].drug_name.lower(), []).append(m)
    for drug, group in by_term.items():
        patients = {m.patient_id for m in group}
        if len({m.prescription_id for m in group}) > 1 and not (len(named) > 1 and patients <= named
                                                                and len(patients) == len(group)):
            who = ", ".join(sorted(by_id[m.prescription_id].patient_name for m in group))
            return IntakeDecision([], f"{drug} matches {len(group)} prescriptions ({who}); which one?",
                                  group[0].score, listing, mentions)
    chosen = [m for group in by_term.values() for m in (group if len(group) > 1 else group[:1])]
    confidence = min(m.score for m in chosen)
    unknown = _unrecognised(text, chosen, candidates)
    if unknown:
        found = ", ".join(f"{by_id[m.prescription_id].drug_name} ({by_id[m.prescription_id].patient_name})"
                          for m in chosen)
        return IntakeDecision([], f"Partly recognised: found {found}; not recognised: {', '.join(unknown)} — "
                                  "please check the whole message.", confidence, listing, mentions)
    how = ", ".join(f"{m.word!r} → {by_id[m.prescription_id].drug_name} ({m.how})" for m in chosen)
    return IntakeDecision(chosen, f"Matched {how}.", confidence, listing, mentions)


def _names_patient(words: list[str], name: str) -> bool:
    """The patient's (or animal's) first name written in the message, in any case."""
    parts = words_of(name)
    return bool(parts) and all(p in words for p in parts)


_ITEM_SPLIT = re.compile(r"[,;&+\n]|\band\b|\bplus\b|\balso\b", re.IGNORECASE)
_FILLER = STOPWORDS | frozenset({"my", "our", "a", "an", "to", "of", "on", "is", "it", "we", "i", "me", "can", "you",
                                 "get", "send", "refil", "pls", "plz", "thx", "asap", "too", "as", "well", "out",
                                 "both", "all", "s", "one", "two", "bottle", "bottles", "box", "pack", "drops",
                                 "are", "was", "be", "do", "dont", "not", "no", "yes", "ok", "okay", "in"})


def _unrecognised(text: str, chosen: list[MedicationMatch], candidates: list[Candidate]) -> list[str]:
    """Words of a listed item that named no prescription ("carprofen and heartgard": heartgard)."""
    matched = {w for m in chosen for w in words_of(m.word)}
    names = {w for c in candidates for w in words_of(c.patient_name)}
    out: list[str] = []
    for item in _ITEM_SPLIT.split(text or ""):
        words = words_of(item)
        if not words or matched & set(words):
            continue
        rest = [w for w in words if w not in _FILLER and w not in names and not w.isdigit()
                and not REFILL_WORDS.fullmatch(w) and len(w) >= 4]
        out.extend(r for r in rest if r not in out)
    return out


# --- reads ----------------------------------------------------------------------------------------

def patients_for_sender(sender: str, *, user=None) -> list[Patient]:
    """Patients whose contact is this phone number or e-mail address (a pet owner's animals all
    carry the owner's contact). With ``user`` (the acting account): only the patients it may see —
    for an integrator account, its bound pharmacies' patients (pharmacy.scoping; HIPAA 45 CFR
    164.502(b) minimum necessary), so an answer never names another pharmacy's patient."""
    s = (sender or "").strip()
    if not s:
        return []
    if "@" in s:
        qs = Patient.objects.filter(email__iexact=s)
    else:
        qs = Patient.objects.filter(phone__in={normalize_phone(s), s})
    if user is not None:
        qs = scope_patients(qs, user)
    return list(qs.order_by("pk")[:25])


def candidates_for(patients: list[Patient], *, user=None) -> list[Candidate]:
    """The patients' active prescriptions; with ``user``, only those at pharmacies it may act for
    (an integrator opens requests only on its own pharmacies' prescriptions)."""
    rxs = (Prescription.objects.filter(patient__in=patients, status="active")
           .select_related("drug", "patient").order_by("patient_id", "pk"))
    if user is not None:
        rxs = scope_to_pharmacy(rxs, user)
    return [Candidate(prescription_id=rx.pk, patient_id=rx.patient_id, patient_name=rx.patient.first_name,
                      is_animal=rx.patient.is_animal, drug_name=rx.drug.name,
                      brand_names=tuple(rx.drug.brand_names or ()), synonyms=dictionary_synonyms(rx.drug.name))
            for rx in rxs]


def intake_triage_list():
    """Messages waiting for a person, oldest first (the triage page)."""
    return (IntakeMessage.objects.filter(status=IntakeStatus.TRIAGE).select_related("matched_patient")
            .order_by("received_at", "pk"))


# --- services -------------------------------------------------------------------------------------

def _open_for(msg: IntakeMessage, rx: Prescription, *, actor: Actor, confidence: Decimal, reason: str):
    req = services.refill_request_open(prescription=rx, actor=actor, source=RequestSource.PATIENT, reason=reason,
                                       intake=msg, match_confidence=confidence,
                                       triage_summary={"message": msg.text[:500]})
    return req  # evaluation stored the full triage summary (services._store_triage)


def intake_receive(*, channel: str, sender: str, text: str, actor: Actor,
                   received_at: datetime | None = None) -> IntakeMessage:
    """Store the message, then match it; matched → request(s) opened, otherwise triage. An SMS opt-out
    keyword (STOP, UNSUBSCRIBE, PARAR …) withdraws consent to messages instead."""
    with transaction.atomic():
        msg = IntakeMessage(channel=channel, sender=sender.strip()[:200], text=text,
                            received_at=received_at or timezone.now(), status=IntakeStatus.TRIAGE,
                            triage_reason="Not matched yet.")
        msg.full_clean()
        save_with_history(msg, actor=actor, reason=f"Received via {channel}")
    # An integrator account matches only within its own pharmacies (issue 14 item 3); staff and
    # system actors match across the chain.
    scope = actor if is_partner(actor) else None
    if channel == "sms" and is_opt_out(text):
        return _opt_out(msg, scope=scope)
    try:
        _match_and_open(msg, scope=scope)
    except Exception as exc:  # noqa: BLE001 — never drop a message: it waits in triage with the error
        log.exception("Intake %s could not be matched", msg.pk)
        with transaction.atomic():
            msg = IntakeMessage.objects.select_for_update().get(pk=msg.pk)
            msg.status = IntakeStatus.TRIAGE
            msg.triage_reason = f"Automatic matching failed ({type(exc).__name__}); needs a person."[:200]
            save_with_history(msg, actor=INTAKE, reason=msg.triage_reason, update_fields=["status", "triage_reason"])
    msg.refresh_from_db()
    return msg


#: SMS opt-out keywords (CTIA Messaging Principles and Best Practices §5: STOP, STOPALL, UNSUBSCRIBE,
#: CANCEL, END, QUIT; Spanish PARAR, as US carriers honour for Spanish-language programmes).
OPT_OUT_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "parar", "stop all",
                           "alto", "baja"})


def is_opt_out(text: str) -> bool:
    """The whole message is an opt-out keyword (any case, punctuation around it ignored)."""
    plain = " ".join(re.sub(r"[^\w\s]", " ", (text or "").lower()).split())
    return plain in OPT_OUT_WORDS


def _opt_out(msg: IntakeMessage, *, scope=None) -> IntakeMessage:
    """Withdraw consent to messages for every patient with this phone number (history recorded on
    each), and confirm once — the only message sent after an opt-out (CTIA §5). Received through an
    integrator account (``scope``): only its own pharmacies' patients with that number."""
    from pharmacy.messaging.outbox import outbox_enqueue

    with transaction.atomic():
        msg = IntakeMessage.objects.select_for_update().get(pk=msg.pk)
        patients = list(Patient.objects.select_for_update().filter(
            pk__in=[p.pk for p in patients_for_sender(msg.sender, user=scope)]).order_by("pk"))
        withdrawn = []
        for patient in patients:
            if patient.consent_to_messages:
                patient.consent_to_messages = False
                save_with_history(patient, actor=INTAKE, reason=f"SMS opt-out {msg.text.strip()[:20]!r} received "
                                  f"(intake {msg.pk}): consent to messages withdrawn",
                                  update_fields=["consent_to_messages"])
                withdrawn.append(patient)
        if withdrawn:
            outbox_enqueue(kind="sms:opt-out", transport="sms", destination=msg.sender, content_type="text/plain",
                           payload="You are unsubscribed and will receive no more messages from the pharmacy. "
                                   "Reply START to subscribe again.",
                           dedupe_key=f"sms-opt-out:{msg.pk}", reason="Opt-out confirmation (sent once)",
                           actor=INTAKE, related=msg)
        msg.status = IntakeStatus.RESOLVED
        msg.triage_reason = (f"Opt-out: consent to messages withdrawn for {len(withdrawn)} patient(s)"
                             if withdrawn else "Opt-out: no consent on file for this number")[:200]
        msg.matched_patient_id = patients[0].pk if len(patients) == 1 else None
        save_with_history(msg, actor=INTAKE, reason=msg.triage_reason,
                          update_fields=["status", "triage_reason", "matched_patient"])
        record_event(kind="refills.sms_opt_out", actor=INTAKE, subject=msg,
                     summary=f"SMS opt-out from intake {msg.pk}: {len(withdrawn)} patient(s)")
    return msg


def _match_and_open(msg: IntakeMessage, *, scope=None) -> None:
    patients = patients_for_sender(msg.sender, user=scope)
    candidates = candidates_for(patients, user=scope) if patients else []
    words = words_of(msg.text)
    decision = decide_intake(msg.text, candidates, mentions=dictionary_mentions(words))
    detail = {"patients": [{"id": p.pk, "name": f"{p.first_name} {p.last_name}", "is_animal": p.is_animal}
                           for p in patients],
              "candidates": decision.candidates, "mentions": decision.mentions, "reason": decision.reason}
    with transaction.atomic():
        msg = IntakeMessage.objects.select_for_update().get(pk=msg.pk)
        msg.match_detail = detail
        msg.match_confidence = Decimal(str(round(decision.confidence, 3)))
        patient_ids = {m.patient_id for m in decision.matches} or {p.pk for p in patients}
        msg.matched_patient_id = next(iter(patient_ids)) if len(patient_ids) == 1 else None
        fields = ["match_detail", "match_confidence", "matched_patient", "status", "triage_reason"]
        if not patients:
            msg.status, msg.triage_reason = IntakeStatus.TRIAGE, "Unknown sender: no patient has this contact."
            save_with_history(msg, actor=INTAKE, reason=msg.triage_reason, update_fields=fields)
            return
        if not decision.matches:
            msg.status, msg.triage_reason = IntakeStatus.TRIAGE, decision.reason[:200]
            save_with_history(msg, actor=INTAKE, reason=f"To triage: {decision.reason}"[:500], update_fields=fields)
            return
        opened, existing = [], []
        rxs = {rx.pk: rx for rx in Prescription.objects.select_related("drug").filter(
            pk__in=[m.prescription_id for m in decision.matches])}
        for m in decision.matches:
            try:
                with transaction.atomic():
                    req = _open_for(msg, rxs[m.prescription_id], actor=INTAKE,
                                    confidence=Decimal(str(round(m.score, 3))),
                                    reason=f"Patient message via {msg.channel} (intake {msg.pk}): {m.how} match")
                opened.append(req.pk)
            except DomainError as exc:
                if exc.code != "duplicate_open_request":
                    raise
                open_req = RefillRequest.objects.filter(prescription_id=m.prescription_id).order_by("-pk").first()
                existing.append(open_req.pk if open_req else None)
        detail["opened"], detail["already_open"] = opened, existing
        msg.match_detail = detail
        msg.status, msg.triage_reason = IntakeStatus.MATCHED, ""
        what = (f"opened request(s) {', '.join(map(str, opened))}" if opened else "") + (
            f"{'; ' if opened else ''}already open: {', '.join(map(str, existing))}" if existing else "")
        save_with_history(msg, actor=INTAKE, reason=f"Matched — {what}"[:500], update_fields=fields)


def _locked_in_triage(intake_id: int, target: str) -> IntakeMessage:
    try:
        msg = IntakeMessage.objects.select_for_update().get(pk=intake_id)
    except IntakeMessage.DoesNotExist as exc:
        raise DomainError(f"Intake message {intake_id} does not exist.", code="not_found") from exc
    if msg.status != IntakeStatus.TRIAGE:
        raise TransitionNotAllowed(model="intake message", current=msg.status, target=target)
    return msg


def intake_assign(*, intake_id: int, prescription_id: int, actor: Actor, note: str = "") -> RefillRequest:
    """Staff resolve a triaged message: it asks for this prescription → a request is opened (or
    an open one is found) and the message is resolved."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="assign a patient message")
    with transaction.atomic():
        msg = _locked_in_triage(intake_id, IntakeStatus.RESOLVED)
        try:
            rx = Prescription.objects.select_related("drug", "patient").get(pk=prescription_id)
        except Prescription.DoesNotExist as exc:
            raise ValidationError({"prescription": f"Prescription {prescription_id} does not exist."}) from exc
        try:
            with transaction.atomic():
                req = _open_for(msg, rx, actor=actor, confidence=Decimal("1.000"),
                                reason=f"Patient message (intake {msg.pk}) assigned by staff")
            outcome = f"opened request {req.pk}"
        except DomainError as exc:
            if exc.code != "duplicate_open_request":
                raise
            req = RefillRequest.objects.filter(prescription=rx).order_by("-pk").first()
            outcome = f"request {req.pk} was already open"
        msg.status, msg.matched_patient = IntakeStatus.RESOLVED, rx.patient
        msg.handled_by, msg.handled_at = actor, timezone.now()
        msg.resolution = f"Assigned to {rx} — {outcome}{'. ' + note if note else ''}"[:2000]
        save_with_history(msg, actor=actor, reason=msg.resolution[:500],
                          update_fields=["status", "matched_patient", "handled_by", "handled_at", "resolution"])
        record_event(kind="intake.assigned", actor=actor, subject=msg, patient_id=rx.patient_id,
                     summary=f"Patient message assigned to prescription {rx.pk}", data={"request": req.pk})
    return req


def intake_dismiss(*, intake_id: int, actor: Actor, reason: str) -> IntakeMessage:
    """Staff close a triaged message without a request (not a refill, spam, handled by phone …)."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="dismiss a patient message")
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the message is dismissed."})
    with transaction.atomic():
        msg = _locked_in_triage(intake_id, IntakeStatus.DISMISSED)
        msg.status, msg.handled_by, msg.handled_at = IntakeStatus.DISMISSED, actor, timezone.now()
        msg.resolution = reason.strip()[:2000]
        save_with_history(msg, actor=actor, reason=f"Dismissed: {reason.strip()}"[:500],
                          update_fields=["status", "handled_by", "handled_at", "resolution"])
        record_event(kind="intake.dismissed", actor=actor, subject=msg, patient_id=msg.matched_patient_id,
                     summary="Patient message dismissed", data={"reason": reason.strip()[:200]})
    return msg


# Stored on the request by the refill services (a RefillRequest write); kept importable here.
refill_request_store_triage = services.refill_request_store_triage
