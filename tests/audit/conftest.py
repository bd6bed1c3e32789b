from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection


@contextmanager
def behind_the_apps_back(*tables: str):
    """Tamper like someone with direct database access: on PostgreSQL the table owner switches
    the append-only trigger off for this transaction (ALTER TABLE is transactional)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Fire pending deferred FK checks first: ALTER TABLE refuses while any are queued.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER rxhub_append_only')
    try:
        yield connection
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for table in tables:
                    cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER rxhub_append_only')
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def chain(db):
    """Five events in the chain."""
    from audit.events import record_event
    from pharmacy.actors import system_actor

    actor = system_actor("system:maintenance")
    return [
        record_event(kind="test.event", actor=actor, summary=f"event {i}", data={"i": i}) for i in range(5)
    ]


from tests.refills.conftest import ace_rule, due_prescription  # noqa: E402,F401  (shared refill fixtures)
