"""History and audit rows cannot be changed or deleted through the application, the admin, or
(on PostgreSQL) any SQL statement; purging old rows is an explicit, audited command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.immutability import ImmutableRecordError, protected_tables, tables_with_trigger
from audit.models import AuditEvent, PhiAccess
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL triggers")


def test_history_row_cannot_be_saved_again_through_the_orm():
    patient = PatientFactory()
    record = patient.history.first()
    record.history_change_reason = "rewritten"
    with pytest.raises(ImmutableRecordError):
        record.save()


def test_history_row_cannot_be_deleted_through_the_orm():
    patient = PatientFactory()
    with pytest.raises(ImmutableRecordError), transaction.atomic():
        patient.history.all().delete()
    assert patient.history.count() == 1


def test_audit_event_cannot_be_changed_or_deleted_through_the_orm(chain):
    event = AuditEvent.objects.get(sequence=1)
    event.summary = "changed"
    with pytest.raises(ImmutableRecordError):
        event.save()
    with pytest.raises(ImmutableRecordError), transaction.atomic():
        AuditEvent.objects.filter(sequence=1).delete()


def test_admin_offers_no_change_or_delete_on_audit_tables(admin_user, client, chain):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    event = AuditEvent.objects.get(sequence=1)
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@on_postgres
def test_postgres_trigger_covers_every_history_and_audit_table():
    tables = protected_tables(connection)
    assert "pharmacy_historicalpatient" in tables and "refills_historicalrefillrequest" in tables
    assert {"audit_auditevent", "audit_phiaccess"} <= set(tables)
    missing = set(tables) - tables_with_trigger(connection)
    assert not missing, f"tables without the append-only trigger: {sorted(missing)}"


@on_postgres
@pytest.mark.parametrize(
    "table", ["pharmacy_historicalpatient", "refills_historicalrefillrequest", "audit_auditevent"]
)
def test_postgres_refuses_update_and_delete(table, chain):
    from refills.models import RefillRequest
    from tests.factories import PrescriptionFactory

    rx = PrescriptionFactory()
    RefillRequest.objects.create(prescription=rx, patient=rx.patient)
    for sql in (
        f'UPDATE "{table}" SET {"summary" if table == "audit_auditevent" else "history_change_reason"} = %s',
        f'DELETE FROM "{table}"',
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, ["x"] if sql.startswith("UPDATE") else [])


@on_postgres
def test_postgres_refuses_queryset_update_on_history():
    patient = PatientFactory()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        patient.history.update(history_change_reason="bypassing signals")


@on_postgres
def test_post_migrate_handler_covers_a_new_history_table():
    from audit.immutability import install_after_migrate

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE zz_historicalthing (id int)")
        cursor.execute("INSERT INTO zz_historicalthing VALUES (1)")
    install_after_migrate(sender=None, using="default")
    assert "zz_historicalthing" in tables_with_trigger(connection)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM zz_historicalthing")


def _age(model, field, days):
    """Make rows old (as if written long ago) — only possible behind the app's back."""
    from .conftest import behind_the_apps_back

    with behind_the_apps_back(model._meta.db_table) as conn, conn.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" SET "{field}" = %s', [timezone.now() - timedelta(days=days)]
        )


def test_purge_refuses_dates_inside_retention(settings):
    settings.RXHUB = {**settings.RXHUB, "HISTORY_RETENTION_DAYS": 365}
    with pytest.raises(CommandError, match="retention"):
        call_command("purge_history", "--before", timezone.localdate().isoformat(), "--confirm")


def test_purge_without_confirm_only_counts(settings, capsys):
    settings.RXHUB = {**settings.RXHUB, "HISTORY_RETENTION_DAYS": 30}
    patient = PatientFactory()
    hmodel = patient.history.model
    _age(hmodel, "history_date", 400)
    call_command("purge_history", "--before", (timezone.localdate() - timedelta(days=100)).isoformat())
    assert "Dry run" in capsys.readouterr().out
    assert hmodel.objects.count() == 1 and not AuditEvent.objects.filter(kind="history.purged").exists()


def test_purge_removes_old_rows_and_is_audited(settings, admin_user):
    settings.RXHUB = {**settings.RXHUB, "HISTORY_RETENTION_DAYS": 30}
    old, new = PatientFactory(), None
    hmodel = old.history.model
    PhiAccess.objects.create(
        at=timezone.now(), user=admin_user, username="a", patient_id=old.pk, what="x", path="/", method="GET"
    )
    _age(hmodel, "history_date", 400)
    _age(PhiAccess, "at", 400)
    new = PatientFactory()
    call_command(
        "purge_history", "--before", (timezone.localdate() - timedelta(days=100)).isoformat(), "--confirm"
    )
    assert list(hmodel.objects.values_list("id", flat=True)) == [new.pk]
    assert not PhiAccess.objects.exists()
    event = AuditEvent.objects.get(kind="history.purged")
    assert (
        event.data["counts"]["pharmacy.HistoricalPatient"] == 1 and event.actor_label == "system:maintenance"
    )
    # Outside the purge, deletes are refused again.
    with pytest.raises(ImmutableRecordError), transaction.atomic():
        new.history.all().delete()
    from audit.verify import verify_chain

    assert verify_chain().ok
