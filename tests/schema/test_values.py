"""Values of every RFC 7643 §2.3 type: what a client may send, what it gets back, what is refused.

Each case is seen the way a client sees it: a POST of a custom resource type with one attribute of
each type, on MemoryBackend and on SQLite, then the stored value read back and filtered on.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scim2_models import EnterpriseUser, Group, User

from scim2_core import Attribute, Engine, InvalidValueError, ResourceType, Schema
from scim2_core.backends import Backend, MemoryBackend, SQLBackend
from scim2_core.schema import normalize_value, parse_datetime
from tests.helpers import ERROR, call

URN = "urn:example:schemas:Meter"
METER = ResourceType(
    name="Meter",
    endpoint="/Meters",
    schema=Schema(
        id=URN,
        name="Meter",
        attributes=(
            Attribute(name="serial", required=True, uniqueness="server", case_exact=True),
            Attribute(name="reading", type="integer"),
            Attribute(name="ratio", type="decimal"),
            Attribute(name="firmware", type="binary"),
            Attribute(name="installed", type="dateTime"),
            Attribute(name="online", type="boolean"),
            Attribute(name="levels", type="integer", multi_valued=True),
        ),
    ),
)


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    backend: Backend
    if request.param == "memory":
        backend = MemoryBackend()
    else:
        backend = SQLBackend(f"sqlite:///{tmp_path / 'values.db'}")
    yield Engine(backend, resource_types=[User[EnterpriseUser], Group, METER])
    close = getattr(backend, "close", None)
    if close is not None:
        close()


def meter(serial: str, **values: Any) -> dict[str, Any]:
    return {"schemas": [URN], "serial": serial, **values}


# --- accepted values, as stored and returned ------------------------------------------------

ACCEPTED = [
    # (attribute, sent, returned)
    ("reading", 42, 42),
    ("reading", -7, -7),
    ("reading", 3.0, 3),  # an integral JSON number is an integer (RFC 8259 has one number type)
    ("reading", "12", 12),  # numeric strings are an IdP tolerance
    ("reading", 2**62, 2**62),
    ("ratio", 0.25, 0.25),
    ("ratio", 3, 3),
    ("ratio", "1.5", 1.5),
    ("ratio", -1e-3, -1e-3),
    (
        "firmware",
        base64.b64encode(b"\x00\xffbin").decode(),
        base64.b64encode(b"\x00\xffbin").decode(),
    ),
    ("firmware", "", ""),
    ("installed", "2024-03-01T10:00:00Z", "2024-03-01T10:00:00.000Z"),
    ("installed", "2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00.000Z"),
    ("installed", "2024-03-01T10:00:00.1234567Z", "2024-03-01T10:00:00.123Z"),
    ("online", True, True),
    ("online", "False", False),  # Entra ID sends booleans as strings
    ("levels", [1, 2, 3], [1, 2, 3]),
]


@pytest.mark.parametrize(("name", "sent", "returned"), ACCEPTED)
def test_value_of_each_type_is_stored_in_canonical_form(
    engine: Engine, name: str, sent: Any, returned: Any
) -> None:
    created = call(engine, "POST", "/Meters", meter("M-1", **{name: sent}))
    assert created.status == 201, created
    assert created.json[name] == returned
    read = call(engine, "GET", f"/Meters/{created.json['id']}")
    assert read.json[name] == returned


# --- refused values: 400 invalidValue naming the attribute, nothing stored ----------------------

REFUSED = [
    ("reading", "twelve"),
    ("reading", 1.5),
    ("reading", True),
    ("reading", [1]),
    ("reading", {"value": 1}),
    ("ratio", "NaN"),
    ("ratio", "inf"),
    ("ratio", "1.5x"),
    ("ratio", False),
    ("firmware", "not base64!"),
    ("firmware", 12),
    ("installed", "yesterday"),
    ("installed", "2024-13-01T00:00:00Z"),
    ("installed", 1700000000),
    ("online", "maybe"),
    ("online", 1),
    ("serial", 12345),  # a JSON number for a string: its text is not what was sent
    ("serial", 1e999),  # would read as "inf"
    ("serial", True),
    ("levels", 3),  # a lone scalar for a multi-valued attribute
    ("levels", ["a"]),
]


@pytest.mark.parametrize(("name", "sent"), REFUSED)
def test_value_of_the_wrong_type_is_refused_by_name(engine: Engine, name: str, sent: Any) -> None:
    body = meter("M-1") if name == "serial" else meter("M-1", **{name: sent})
    if name == "serial":
        body["serial"] = sent
    raw = _dumps(body)
    refused = call(engine, "POST", "/Meters", raw)
    assert refused.status == 400, refused
    assert refused.json["schemas"] == [ERROR]
    assert refused.json["scimType"] == "invalidValue"
    assert name in refused.json["detail"]
    assert call(engine, "GET", "/Meters").json["totalResults"] == 0


def _dumps(body: dict[str, Any]) -> bytes:
    import json

    # json.dumps writes Infinity for 1e999; a client's JSON would carry the literal 1e999.
    return json.dumps(body).replace("Infinity", "1e999").encode()


def test_strict_mode_refuses_the_string_tolerances() -> None:
    from scim2_core import Options

    engine = Engine(
        MemoryBackend(), resource_types=[User, Group, METER], options=Options(strict=True)
    )
    for name, sent in [("reading", "12"), ("ratio", "1.5"), ("online", "False")]:
        refused = call(engine, "POST", "/Meters", meter("M-1", **{name: sent}))
        assert refused.status == 400, (name, refused)
        assert refused.json["scimType"] == "invalidValue"


# --- numbers and dateTimes compare as numbers and instants, on every backend -------------------


def test_numeric_and_datetime_filters_compare_by_value(engine: Engine) -> None:
    for i, (reading, ratio, day) in enumerate([(9, 0.5, 1), (10, 1.25, 2), (100, -2.0, 3)]):
        created = call(
            engine,
            "POST",
            "/Meters",
            meter(f"M-{i}", reading=reading, ratio=ratio, installed=f"2024-03-0{day}T00:00:00Z"),
        )
        assert created.status == 201, created

    def serials(flt: str) -> list[str]:
        found = call(engine, "GET", "/Meters", query={"filter": flt, "sortBy": "serial"})
        assert found.status == 200, found
        return [r["serial"] for r in found.json.get("Resources", [])]

    # 9 < 10 < 100 as numbers (as text, "100" < "9")
    assert serials("reading gt 9") == ["M-1", "M-2"]
    assert serials("reading lt 10") == ["M-0"]
    assert serials("reading ge 10 and reading le 100") == ["M-1", "M-2"]
    assert serials("reading eq 100") == ["M-2"]
    assert serials("reading ne 100") == ["M-0", "M-1"]
    assert serials("ratio gt 0.75") == ["M-1"]
    assert serials("ratio lt 0") == ["M-2"]
    assert serials("ratio ge -2") == ["M-0", "M-1", "M-2"]
    assert serials('installed gt "2024-03-01T12:00:00+00:00"') == ["M-1", "M-2"]
    assert serials('installed le "2024-03-02T00:00:00Z"') == ["M-0", "M-1"]
    ordered = call(engine, "GET", "/Meters", query={"sortBy": "reading", "sortOrder": "descending"})
    assert [r["reading"] for r in ordered.json["Resources"]] == [100, 10, 9]


def test_a_string_compared_with_a_number_attribute_is_an_invalid_filter(engine: Engine) -> None:
    refused = call(engine, "GET", "/Meters", query={"filter": 'reading gt "ten"'})
    assert refused.status == 400
    assert refused.json["scimType"] == "invalidFilter"


# --- properties of normalisation ---------------------------------------------------------------

INTEGER = Attribute(name="n", type="integer")
DECIMAL = Attribute(name="d", type="decimal")
BINARY = Attribute(name="b", type="binary")


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_integer_round_trips_as_number_and_as_text(n: int) -> None:
    assert normalize_value(INTEGER, n) == n
    assert normalize_value(INTEGER, str(n)) == n
    with pytest.raises(InvalidValueError):
        normalize_value(INTEGER, str(n), tolerant=False)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_decimal_is_kept_when_finite_and_refused_otherwise(x: float) -> None:
    if math.isfinite(x):
        assert normalize_value(DECIMAL, x) == x
    else:
        with pytest.raises(InvalidValueError):
            normalize_value(DECIMAL, x)


@given(st.binary(max_size=64))
def test_base64_of_any_bytes_is_binary(data: bytes) -> None:
    text = base64.b64encode(data).decode()
    assert normalize_value(BINARY, text) == text


@given(st.text(max_size=20))
def test_binary_refuses_what_is_not_base64(text: str) -> None:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        with pytest.raises(InvalidValueError):
            normalize_value(BINARY, text)
    else:
        assert normalize_value(BINARY, text) == text


def test_parse_datetime_refuses_what_is_not_an_xsd_datetime() -> None:
    for bad in ["", "2024", "x" * 65]:
        with pytest.raises(ValueError, match="not a dateTime"):
            parse_datetime(bad)
    with pytest.raises(ValueError, match="hour must be in"):
        parse_datetime("2024-03-01T25:00:00Z")
    assert parse_datetime("2024-03-01").year == 2024


# --- URN-qualified keys and extension objects in a body (RFC 7644 §3.10, RFC 7643 §3.3) --------

ENT_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_URN = "urn:ietf:params:scim:schemas:core:2.0:User"


def _user_engine(**options: Any) -> Engine:
    from scim2_core import Options

    return Engine(MemoryBackend(), options=Options(**options) if options else None)


def test_urn_qualified_keys_land_where_they_belong() -> None:
    # "urn:...:enterprise:2.0:User:employeeNumber" at the top level is the extension's
    # attribute; "urn:...:core:2.0:User:name.givenName" the core sub-attribute.
    engine = _user_engine()
    body = {
        "schemas": [CORE_URN, ENT_URN],
        "userName": "ann",
        f"{ENT_URN}:employeeNumber": "701",
        f"{ENT_URN}:manager.value": "boss-id",
        f"{CORE_URN}:name.givenName": "Ann",
        f"{CORE_URN}:title": "Dr",
    }
    created = call(engine, "POST", "/Users", body)
    assert created.status == 201, created
    assert created.json[ENT_URN]["employeeNumber"] == "701"
    assert created.json[ENT_URN]["manager"]["value"] == "boss-id"
    assert created.json["name"]["givenName"] == "Ann"
    assert created.json["title"] == "Dr"


def test_urn_qualified_keys_that_name_nothing_are_dropped_or_refused_when_strict() -> None:
    unknown = [f"{ENT_URN}:shoeSize", f"{ENT_URN}:", "urn:nope:attr", f"{CORE_URN}:name.nope"]
    for key in unknown:
        body = {"schemas": [CORE_URN], "userName": "ann", key: "x"}
        engine = _user_engine()
        created = call(engine, "POST", "/Users", body)
        assert created.status == 201, (key, created)
        assert "x" not in str(created.json.get(ENT_URN, {})), key
        strict = call(_user_engine(strict=True), "POST", "/Users", body)
        assert strict.status == 400, (key, strict)


def test_a_urn_qualified_sub_attribute_beside_a_scalar_is_a_conflict() -> None:
    body = {
        "schemas": [CORE_URN],
        "userName": "ann",
        "name": "Ann",
        f"{CORE_URN}:name.givenName": "A",
    }
    refused = call(_user_engine(), "POST", "/Users", body)
    assert refused.status == 400
    assert refused.json["scimType"] == "invalidValue"


def test_extension_objects_null_wrong_and_unknown() -> None:
    engine = _user_engine()
    # null: the extension is unassigned
    made = call(engine, "POST", "/Users", {"schemas": [CORE_URN], "userName": "a", ENT_URN: None})
    assert made.status == 201, made
    assert ENT_URN not in made.json
    # not an object: 400 naming it
    bad = call(engine, "POST", "/Users", {"schemas": [CORE_URN], "userName": "b", ENT_URN: "x"})
    assert bad.status == 400
    assert ENT_URN in bad.json["detail"]
    # an unknown attribute inside it: dropped, the known ones kept
    body = {"schemas": [CORE_URN, ENT_URN], "userName": "c", ENT_URN: {"department": "R&D", "x": 1}}
    kept = call(engine, "POST", "/Users", body)
    assert kept.status == 201, kept
    assert kept.json[ENT_URN] == {"department": "R&D"}
    # both forms at once: the URN-qualified key joins the object
    body = {
        "schemas": [CORE_URN, ENT_URN],
        "userName": "d",
        f"{ENT_URN}:costCenter": "42",
        ENT_URN: {"department": "Ops"},
    }
    both = call(engine, "POST", "/Users", body)
    assert both.status == 201, both
    assert both.json[ENT_URN] == {"costCenter": "42", "department": "Ops"}
