"""NUL characters are found wherever they hide, and values without them pass at once."""

from __future__ import annotations

import pytest

from jobline.core.input_rules import nul_errors


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": "x\x00"}, "a"),
        ({"a\x00": 1}, "a\x00"),
        ({"a": [{"b": "ok"}, {"b": "\x00"}]}, "a.1.b"),
        (("x", "y\x00"), "1"),
    ],
)
def test_a_nul_anywhere_is_named(value, field):
    assert [e["field"] for e in nul_errors(value)] == [field]


@pytest.mark.parametrize(
    "value",
    [{"a": "x"}, {"a": "\\u0000 written out"}, {"a": {1, 2}}, {"a": object()}, None, 3],
)
def test_values_without_nul_pass(value):
    assert nul_errors(value) == []
