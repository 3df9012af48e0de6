"""The core's JSON text: exactly ``json.dumps``'s compact ASCII form, and a clear error for what has none."""

from __future__ import annotations

import json
import math
import uuid
from collections import OrderedDict
from typing import Any

import pytest

from marconi.storage import validation
from marconi.storage.errors import InvalidInput


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


@pytest.mark.parametrize(
    "value",
    [
        {"p": "producer", "s": 12, "x": "m" * 70},
        'é\u2028"\\\x00\ud800',
        [1, -0.0, 1.5e300, 0.1, 2**64, True, False, None],
        {"a": [1, {"b": "ü", "c": []}], "d": {}},
        OrderedDict([("z", 1), ("a", 2)]),
        [[[[["deep"]]]]],
        "x" * 10_000,
    ],
)
def test_the_text_of_a_value_is_json_dumps_compact_ascii(value: Any) -> None:
    text = validation.to_json(value, "body")
    assert text == dumps(value)
    assert json.loads(text) == value


def test_a_value_that_contains_itself_is_refused_not_a_crash() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    mapping: dict[str, Any] = {"k": "v"}
    mapping["self"] = [mapping]
    for value in (looped, mapping):
        with pytest.raises(InvalidInput, match="nested deeper"):
            validation.to_json(value, "body")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (math.nan, "NaN"),
        ([1, {"k": -math.inf}], "NaN"),
        ({1: "integer key"}, "keys must be strings"),
        ({"k": {1, 2}}, "set values"),
        (10**5000, "integer too long"),
    ],
    ids=["nan", "nested-inf", "integer-key", "set", "huge-integer"],
)
def test_what_has_no_json_text_is_refused_naming_the_field(value: Any, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as raised:
        validation.to_json(value, "messages[3].body")
    assert "messages[3].body" in str(raised.value)


def test_a_client_uuid_comes_back_canonical_however_often_and_however_spelt() -> None:
    spellings = [
        "6F0A2C4E-0000-4000-8000-0000000000BE",
        "{6f0a2c4e-0000-4000-8000-0000000000be}",
        "6f0a2c4e0000400080000000000000be",
    ]
    for _ in range(3):  # the first time parsed, then remembered
        assert {validation.client_uuid(text) for text in spellings} == {"6f0a2c4e-0000-4000-8000-0000000000be"}
    many = [str(uuid.uuid4()).upper() for _ in range(3000)]  # more than are remembered
    assert [validation.client_uuid(text) for text in many] == [text.lower() for text in many]
    with pytest.raises(InvalidInput, match="must be a UUID"):
        validation.client_uuid("6f0a2c4e-0000-4000-8000-0000000000bg")
