"""Every state change of a PA case (DESIGN.md: PACase).

Each service: keyword-only, one transaction, the case row locked, the transition checked against
priorauth/choices.TRANSITIONS, history written with the actor and a reason, audit events for
submissions and decisions, and outbound payer messages written to the outbox in the same
transaction (delivered after commit).

One module per aggregate (issue 12); every public name stays importable from
``priorauth.services``:

- ``_common``: What every PA case service shares: the case lock, the checked move, the prescription's PA status.
- ``payers``: Payers and their criteria for a drug (reads used by the case services).
- ``rejections``: Claim rejections: the NCPDP reject-75 trigger that opens a PA case.
- ``cases``: Opening a PA case, its evidence and criteria analysis, the drafted letter, edits, attachments,
- ``submission``: Submitting a case to the payer (through the outbox), answering the payer's questions, appeals.
- ``responses``: Payer responses (pushed, polled or typed in): validated, stored, then applied to the case.
- ``schedules``: Scheduled PA work: polling open cases' payer status, expiry and renewal.
"""
from __future__ import annotations

from ._common import DECIDE_ROLES, EDITABLE, PREPARE_ROLES, ROLLOUT_ACTOR, STATUS_ACTOR, S
from .cases import (
    ANALYSIS_FIELDS,
    MAX_ATTACHMENT_BYTES,
    pa_attachment_add,
    pa_case_acknowledge,
    pa_case_cancel,
    pa_case_edit,
    pa_case_open,
    pa_case_refresh,
    pa_case_review_auto,
    pa_case_set_expedited,
)
from .payers import criteria_for, payer_for
from .rejections import claim_rejection_receive
from .responses import PATIENT_TEXT, pa_response_ingest, pa_response_receive, validate_push
from .schedules import pa_expiry_sweep, pa_poll_open
from .submission import on_submission_delivered, pa_case_answer, pa_case_appeal, pa_case_submit

__all__ = [
    "ANALYSIS_FIELDS",
    "DECIDE_ROLES",
    "EDITABLE",
    "MAX_ATTACHMENT_BYTES",
    "PATIENT_TEXT",
    "PREPARE_ROLES",
    "ROLLOUT_ACTOR",
    "S",
    "STATUS_ACTOR",
    "claim_rejection_receive",
    "criteria_for",
    "on_submission_delivered",
    "pa_attachment_add",
    "pa_case_acknowledge",
    "pa_case_answer",
    "pa_case_appeal",
    "pa_case_cancel",
    "pa_case_edit",
    "pa_case_open",
    "pa_case_refresh",
    "pa_case_review_auto",
    "pa_case_set_expedited",
    "pa_case_submit",
    "pa_expiry_sweep",
    "pa_poll_open",
    "pa_response_ingest",
    "pa_response_receive",
    "payer_for",
    "validate_push",
]
