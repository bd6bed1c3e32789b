"""API list endpoints cost a fixed number of queries, whatever the number of rows (issue 12, item 8):
each list is read at two sizes and must issue the same statements, like the queue pages' tests."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pharmacy.messaging.outbox import outbox_enqueue
from tests.factories import AllergyFactory, CoverageFactory, FillFactory, LabResultFactory, PrescriptionFactory
from tests.interop.ncpdp_variants import NEW_RX_PAYLOAD

pytestmark = pytest.mark.django_db


def _refill_request(pharmacist):
    from refills import services

    return services.refill_request_open(prescription=PrescriptionFactory(), actor=pharmacist, source="staff",
                                        reason="API query-count test", evaluate=False)


def _inbound(n):
    from reconciliation import services

    return services.inbound_receive(channel="http", payload=(
        f"MSH|^~\\&|EPIC|GENHOSP|RX|PHARM|20261130120000||ADT^A08|QC-{n}|P|2.5.1\r"
        f"PID|1||M{n:05d}^^^GENHOSP^MR||DOE^JANE||19600101|F\r"))


BUILDERS = {
    "patients": lambda n, user: PrescriptionFactory().patient,
    "prescriptions": lambda n, user: PrescriptionFactory(),
    "fills": lambda n, user: FillFactory(),
    "allergies": lambda n, user: AllergyFactory(),
    "lab-results": lambda n, user: LabResultFactory(),
    "coverages": lambda n, user: CoverageFactory(),
    "outbox": lambda n, user: outbox_enqueue(kind="ncpdp:NewRx", payload=NEW_RX_PAYLOAD, transport="file",
                                             deliver_now=False),
    "refill-requests": lambda n, user: _refill_request(user),
    "inbound-messages": lambda n, user: _inbound(n),
}


def _list_queries(client, endpoint) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/v1/{endpoint}/")
    assert response.status_code == 200, response.content[:300]
    return len(queries), response.json()["count"]


@pytest.mark.parametrize("endpoint", sorted(BUILDERS))
def test_api_list_costs_the_same_queries_at_two_sizes(endpoint, api_client_for, make_user):
    admin = make_user("admin")
    pharmacist = make_user("pharmacist")
    client = api_client_for(user=admin)
    build = BUILDERS[endpoint]
    for n in range(2):
        build(n, pharmacist)
    small, small_count = _list_queries(client, endpoint)
    for n in range(2, 14):
        build(n, pharmacist)
    large, large_count = _list_queries(client, endpoint)
    assert large_count >= small_count + 12  # the rows are really listed
    assert large == small, f"{endpoint}: {small} queries for {small_count} rows, {large} for {large_count}"
