"""API docs grouped by app (refills, prior authorization, reconciliation, audit, core), each operation
with a summary and a description of its own."""
from collections import Counter

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db


def test_operations_are_grouped_by_app_with_a_description_each():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert [t["name"] for t in schema["tags"]] == ["refills", "prior authorization", "reconciliation", "audit",
                                                   "core"]
    tags, descriptions = Counter(), Counter()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            (tag,) = operation["tags"]
            tags[tag] += 1
            assert operation["summary"] and operation["description"], (method, path)
            descriptions[operation["description"]] += 1
    assert schema["paths"]["/api/v1/refill-requests/"]["get"]["tags"] == ["refills"]
    assert schema["paths"]["/api/v1/pa-cases/"]["get"]["tags"] == ["prior authorization"]
    assert schema["paths"]["/api/v1/reconciliation-tasks/"]["get"]["tags"] == ["reconciliation"]
    assert schema["paths"]["/api/v1/patients/"]["get"]["tags"] == ["core"]
    assert all(tags[t] for t in ("refills", "prior authorization", "reconciliation", "core"))
    assert max(descriptions.values()) == 1, [d for d, n in descriptions.items() if n > 1][:3]
