"""Two deliveries of one rejected claim at the same moment open one case; two pharmacists
submitting one case at once produce one submission and one clear refusal (PostgreSQL locks)."""
import threading

import pytest
from django.db import connection
from django.utils import timezone

from pharmacy.errors import DomainError
from priorauth import services
from priorauth.models import ClaimRejection, PACase, PASubmission

pytestmark = pytest.mark.django_db(transaction=True)


def _race(target, args_list):
    barrier, outcomes = threading.Barrier(len(args_list)), []

    def run(*args):
        barrier.wait()
        try:
            outcomes.append(target(*args))
        except DomainError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return outcomes


def test_concurrent_claim_deliveries_and_submissions(pa_rx, make_criteria, make_user):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent row locks need PostgreSQL")
    make_criteria()
    integrator = make_user("integrator")

    def deliver(_):
        rejection, created = services.claim_rejection_receive(
            actor=integrator, claim_reference="RACE-1", patient=pa_rx.patient, prescription=pa_rx, drug=pa_rx.drug,
            ndc=pa_rx.drug.ndc, bin="610014", pcn="MEDDPRIME", group="G1234", reject_codes=["75"],
            rejected_at=timezone.now())
        return ("created" if created else "repeat", rejection.case_id)

    outcomes = _race(deliver, [(1,), (2,)])
    assert sorted(o[0] for o in outcomes) == ["created", "repeat"]
    assert len({o[1] for o in outcomes}) == 1
    assert PACase.objects.count() == 1 and ClaimRejection.objects.get().deliveries == 2

    case = PACase.objects.get()
    pharmacists = [make_user("pharmacist"), make_user("pharmacist")]

    def submit(user):
        services.pa_case_submit(case_id=case.pk, actor=user)
        return "submitted"

    assert sorted(_race(submit, [(u,) for u in pharmacists])) == ["TransitionNotAllowed", "submitted"]
    assert PASubmission.objects.filter(case=case).count() == 1
