"""Pulling a linked patient's record from the EHR's FHIR endpoint.

The pull is network I/O (three searches, with retries and timeouts): a page never waits for it.
``pull_ehr_record_start`` checks who asks and that the patient has an endpoint, then queues the
django-q2 task ``reconciliation.tasks.pull_ehr_record`` (after commit); the task runs
``pull_ehr_record`` with no transaction open and its result is shown on the patient page
(``last_pull``)."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from audit.events import record_event
from pharmacy.actors import Actor
from pharmacy.errors import DomainError
from pharmacy.models import Patient
from pharmacy.roles import ADMIN, PHARMACIST, TECHNICIAN, require_role

from .. import choices
from ..conf import conf
from ..models import EhrLink, InboundMessage
from ..selectors import PULL_GROUP
from .inbound import inbound_process, inbound_receive


def pull_ehr_record(*, patient_id: int, actor: Actor) -> InboundMessage:
    """GET active MedicationRequest, AllergyIntolerance and Condition for a linked patient (FHIR R4
    search, US Core), with a timeout and retries; the answers are stored as one Bundle and processed."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="pull an EHR record")
    link = _endpoint_link(patient_id)
    base = link.fhir_base_url.rstrip("/")
    pid = urllib.parse.quote(link.fhir_patient_id or link.external_id)
    queries = [f"MedicationRequest?patient={pid}&status=active&intent=order,plan",
               f"AllergyIntolerance?patient={pid}&clinical-status=active", f"Condition?patient={pid}"]
    entries: list[dict] = []
    attempts, timeout = conf("RECON_PULL_ATTEMPTS"), conf("RECON_PULL_TIMEOUT_SECONDS")
    for query in queries:
        last_error = ""
        for _ in range(attempts):
            request = urllib.request.Request(f"{base}/{query}", headers={"Accept": "application/fhir+json"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured endpoint)
                    bundle = json.loads(response.read(10_000_000).decode("utf-8"))
                entries.extend(e for e in bundle.get("entry", []) if isinstance(e, dict))
                last_error = ""
                break
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code} from {base}/{query.split('?')[0]}"
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    break
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                last_error = f"{base}/{query.split('?')[0]}: {exc}"
        if last_error:
            raise DomainError(f"Could not read the EHR record: {last_error}", code="ehr_unreachable")
    bundle = {"resourceType": "Bundle", "id": f"pull-{uuid.uuid4().hex[:16]}", "type": "collection",
              "meta": {"source": link.ehr_system}, "timestamp": timezone.now().isoformat(), "entry": entries}
    message = inbound_receive(channel=choices.Channel.PULL, payload=json.dumps(bundle),
                              content_type="application/fhir+json", source_name=base)
    record_event(kind="reconciliation.ehr_pulled", actor=actor, subject=message, patient_id=patient_id,
                 summary=f"EHR record pulled from {link.ehr_system} ({len(entries)} entries)")
    return inbound_process(message_id=message.pk, patient=Patient.objects.get(pk=patient_id))



def _endpoint_link(patient_id: int) -> EhrLink:
    link = EhrLink.objects.filter(patient_id=patient_id).exclude(fhir_base_url="").order_by("-linked_at").first()
    if link is None:
        raise DomainError("This patient has no EHR link with a FHIR endpoint.", code="no_ehr_link")
    return link


def pull_ehr_record_start(*, patient_id: int, actor: Actor) -> str:
    """Queue the EHR pull for this patient (the task's name, ``ehr-pull:<patient>:<id>``)."""
    require_role(actor, PHARMACIST, TECHNICIAN, ADMIN, action="pull an EHR record")
    _endpoint_link(patient_id)
    name = f"{PULL_GROUP}:{patient_id}:{uuid.uuid4().hex[:12]}"
    user_id = getattr(actor, "pk", None)
    transaction.on_commit(lambda: async_task("reconciliation.tasks.pull_ehr_record", patient_id, user_id,
                                             task_name=name, group=PULL_GROUP))
    return name
