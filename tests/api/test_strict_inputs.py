"""The API refuses what a user-defined job type does not declare, naming the field."""

from __future__ import annotations

import pytest

from jobline.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("inputs", "field", "kind"),
    [
        ({"a": 1, "dealy": 5}, "inputs.dealy", "extra_forbidden"),
        ({"a": "5"}, "inputs.a", "int_type"),
    ],
)
def test_create__user_type_refuses_unknown_keys_and_strings_for_numbers(api, inputs, field, kind):
    r = api.post("/jobs", {"type": "add", "inputs": inputs})
    assert r.status_code == 422
    assert [(e["field"], e["type"]) for e in r.json()["detail"]] == [(field, kind)]
    assert not Job.objects.exists()
