"""The PA letter drafter's HTTP call runs before the case is locked (issue 12; docs/design.md "No
network under a lock"): a real HTTP server on 127.0.0.1 stands in for the language model and
records, as each request arrives, whether the calling thread was inside ``transaction.atomic``."""
import json

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_pa_drafter_http_call_runs_before_the_case_is_locked(http_receiver, settings, payer, make_criteria, pa_rx,
                                                             pharmacist):
    from priorauth import services

    make_criteria()
    evidence_ids = []

    def reply(record):
        seen.append(connection_of_caller.in_atomic_block)
        prompt = json.loads(json.loads(record["body"])["messages"][1]["content"])
        evidence_ids.extend(e["id"] for e in prompt["evidence"])
        text = f"The patient meets the criteria [{evidence_ids[0]}]."
        return 200, json.dumps({"choices": [{"message": {"content": text}}]}), "application/json"

    seen: list[bool] = []
    connection_of_caller = connection  # this thread's connection, read from the server's thread
    http_receiver.responder = reply
    settings.RXHUB = {**settings.RXHUB, "PA_DRAFTER": {"ENABLED": True, "URL": http_receiver.url + "/v1",
                                                       "MODEL": "local-test", "TOKEN_ENV": ""}}
    case = services.pa_case_open(prescription_id=pa_rx.pk, actor=pharmacist)
    assert seen == [False]  # one HTTP call, with no transaction open (so no row locked)
    assert case.drafter == "language-model:local-test" and "meets the criteria" in case.system_letter
    seen.clear()
    refreshed = services.pa_case_refresh(case_id=case.pk, actor=pharmacist)
    assert seen == [False] and refreshed.drafter == "language-model:local-test"
