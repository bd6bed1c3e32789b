"""Complete history: every model of every project app keeps django-simple-history records,
and automated work is attributed to a named system actor, never to nobody."""

from __future__ import annotations

import pytest
from django.utils import timezone

from audit.history import EXCLUDED_FROM_HISTORY, history_model, history_models, project_models


def test_every_project_model_has_history():
    missing = [
        m._meta.label_lower
        for m in project_models()
        if history_model(m) is None and m._meta.label_lower not in EXCLUDED_FROM_HISTORY
    ]
    assert not missing, f"models without HistoricalRecords (add history = HistoricalRecords()): {missing}"


def test_exclusions_are_real_models_with_reasons():
    labels = {m._meta.label_lower for m in project_models()}
    for label, reason in EXCLUDED_FROM_HISTORY.items():
        assert label in labels, f"stale exclusion {label}"
        assert len(reason) > 20


def test_history_records_user_and_reason_fields():
    for model, hmodel in history_models():
        fields = {f.name for f in hmodel._meta.get_fields()}
        assert {"history_user", "history_change_reason", "history_date", "history_type"} <= fields, model


@pytest.mark.django_db
def test_automated_workflow_leaves_no_history_row_without_an_actor(due_prescription, ace_rule, pharmacist):
    """Detection opens the request, the protocol evaluates it, a pharmacist decides, the outbox
    delivers: every history row written meanwhile names a user or a system actor."""
    from refills import services
    from refills.detection import detect_refills, evaluate_opened

    ace_rule("assist")
    # Rows written from here on (the fixtures' factory rows before are not workflow actions).
    before = {
        hmodel: hmodel.objects.order_by("-history_id").values_list("history_id", flat=True).first() or 0
        for _model, hmodel in history_models()
    }
    evaluate_opened(detect_refills(today=timezone.localdate()).request_ids)
    req = due_prescription.refill_requests.get()
    services.refill_request_approve(request_id=req.pk, actor=pharmacist, note="ok")
    written, anonymous = 0, []
    for model, hmodel in history_models():
        rows = hmodel.objects.filter(history_id__gt=before[hmodel])
        written += rows.count()
        anonymous += [
            (model._meta.label, r.history_id, r.history_change_reason)
            for r in rows.filter(history_user__isnull=True)
        ]
    unexplained = [
        (model._meta.label, r.history_id)
        for model, hmodel in history_models()
        for r in hmodel.objects.filter(history_id__gt=before[hmodel])
        if not r.history_change_reason
    ]
    assert written >= 3
    assert not anonymous, f"history rows without an actor: {anonymous}"
    assert not unexplained, f"history rows without a change reason: {unexplained}"
    users = set(req.history.values_list("history_user__username", flat=True))
    assert "system:refill-detection" in users and pharmacist.username in users
