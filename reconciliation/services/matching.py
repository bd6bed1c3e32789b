"""Patients and EHR links: the match item a person resolves, links written by a match, consent."""
from __future__ import annotations

from dataclasses import asdict

from django.db import transaction

from audit.events import record_event
from pharmacy.actors import Actor, actor_user, save_with_history
from pharmacy.interop.clinical import ClinicalRecord
from pharmacy.models import Patient
from pharmacy.roles import ADMIN, PHARMACIST, require_role

from .. import facts
from ..choices import (
    MatchItemStatus,
)
from ..matching import MatchResult
from ..models import EhrLink, InboundMessage, PatientMatchItem
from ._common import INBOUND, _sys


def _open_match_item(message: InboundMessage, record: ClinicalRecord, match: MatchResult) -> PatientMatchItem:
    item = PatientMatchItem.objects.filter(inbound_message=message).first()
    # the patient only (a many-result message is not copied whole into the match item)
    data = facts.jsonable(asdict(record.patient)) if record.patient else {}
    if item is None:
        item = PatientMatchItem(inbound_message=message)
    item.outcome, item.candidates, item.patient_data, item.status = (
        match.outcome, match.candidates, data | {"ehr_system": match.ehr_system, "external_id": match.external_id},
        MatchItemStatus.OPEN)
    return save_with_history(item, actor=_sys(INBOUND), reason=f"Patient match needed: {match.outcome}")


def _ensure_link(patient: Patient, match: MatchResult, *, actor: Actor) -> EhrLink | None:
    if match.link is not None:
        return match.link
    if not match.external_id:
        return None
    link = EhrLink.objects.filter(ehr_system=match.ehr_system, external_id=match.external_id).first()
    if link is not None:
        return link
    user = actor_user(actor)
    return save_with_history(EhrLink(
        patient=patient, ehr_system=match.ehr_system, external_id=match.external_id,
        linked_by=user, match_outcome=match.outcome,
        match_score=round(match.score, 2)), actor=actor,
        reason=f"Linked by {match.outcome} match ({'; '.join(match.reasons)})"[:500])


def ehr_link_set_consent(*, link_id: int, consent: bool, actor: Actor) -> EhrLink:
    require_role(actor, PHARMACIST, ADMIN, action="change consent to exchange")
    with transaction.atomic():
        link = EhrLink.objects.select_for_update().get(pk=link_id)
        link.consent_to_exchange = consent
        save_with_history(link, actor=actor, reason=f"Consent to exchange {'given' if consent else 'withdrawn'}",
                          update_fields=["consent_to_exchange"])
        record_event(kind="reconciliation.consent_changed", actor=actor, subject=link, patient_id=link.patient_id,
                     summary=f"Consent to exchange with {link.ehr_system}: {consent}")
    return link
