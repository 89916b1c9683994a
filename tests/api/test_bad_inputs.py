"""Bad input to every JSON route answers a problem with a known code, never a server error.

Each route of the JSON API (``/api/v1/...`` and ``/.well-known/...``, as api/authorisation.RULES lists
them) gets requests drawn by Hypothesis from its own OpenAPI description, then spoilt: a field of the
wrong JSON type, a required field left out, a field too many, strings empty, very long, non-ASCII or
with control characters, numbers negative, zero, huge or fractional, text that is not JSON, a wrong
Content-Type, and path parameters that name nothing, are very long, climb (``..``) or are junk
percent-escapes. Each request goes once with the key of a role the route admits (so that its body
is validated and reaches the service) and once without a key.

What must hold: no answer is a 5xx; every 4xx is a JSON problem whose ``code`` (and each of its
``problems``' codes) is an ``ErrorCode``; and afterwards the registry still balances, so a refused
request kept nothing half-done.

The number of examples per route follows the Hypothesis profile (a handful by default; many more
with ``HYPOTHESIS_PROFILE=stress``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from neutralize.access.domain import Actor, Role
from neutralize.accounts import intake
from neutralize.api.authorisation import RULES, Access, Rule
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_session_factory, unit_of_work
from tests.api.factories import NOW, key, ledgers_whole, registered_project
from tests.api.junk import CODES, EXAMPLES, ODD_TEXT, PATH_JUNK, QUERY_JUNK

API_PREFIXES = ("/api/", "/.well-known/")
ROUTES = sorted((m, p) for (m, p) in RULES if p.startswith(API_PREFIXES))

# --- the rows the requests may name ----------------------------------------------------------------


@dataclass
class World:
    """Real rows, so that a spoilt request can get past "not found" to the checks behind it."""

    keys: dict[Role, dict[str, str]]
    known: dict[str, list[str]]  # a path parameter's or a field's name -> values that exist


def _reference_account(client: TestClient, organisation_id: str) -> str:
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    credited = intake.Credited(
        external_id="bad-inputs-trip", behaviour="public_transport", started_at=NOW, ended_at=NOW,
        measures={}, grams=10_000, code=None, methodology="public_transport@1.0.0", parameters_sha256=None,
    )  # fmt: skip
    with unit_of_work(factory) as session:
        intake.keep(
            session=session,
            clock=FixedClock(NOW),
            partner_id=organisation_id,
            reference="bad-inputs-rider",
            outcomes=[credited],
        )
    return "bad-inputs-rider"


@pytest.fixture(scope="module")
def world(client: TestClient, admin: dict[str, str], listing: dict[str, Any]) -> World:
    code, owner, org = registered_project(client, admin)
    keys = {role: key(client, role, None if role is Role.ADMIN else org["id"]) for role in Role}
    keys[Role.PROJECT_OWNER] = owner
    quote_ = client.post("/api/v1/quotes", json={"kg": 2, "listing_id": listing["id"]})
    assert quote_.status_code == 201, quote_.text
    ordered = client.post(
        "/api/v1/orders",
        json={"quote_id": quote_.json()["id"], "beneficiary": {"display_name": "Guest"},
              "idempotency_key": "bad-inputs-order"},
    )  # fmt: skip
    assert ordered.status_code == 201, ordered.text
    order = ordered.json()
    ref = order["next_action"]["url"].rsplit("/", 1)[1]
    assert client.post(f"/api/v1/payments/sandbox/{ref}", json={}).status_code == 200
    certificate = client.get(f"/api/v1/orders/{order['id']}").json()["certificate_number"]
    footprint = client.post(
        "/api/v1/footprints", json={"activities": [{"type": "meal", "diet": "vegan", "count": 1}]}
    ).json()["id"]
    serial = client.get("/api/v1/registry/holdings", headers=owner).json()[0]["serial"]
    reference = _reference_account(client, org["id"])
    known = {
        "code": [code, listing["project_code"]],
        "project_code": [code, listing["project_code"]],
        "project": [code],
        "organisation_id": [org["id"]],
        "owner_organisation_id": [org["id"]],
        "seller_organisation_id": [org["id"]],
        "footprint_id": [footprint],
        "order_id": [order["id"]],
        "provider_ref": [ref],
        "number": [certificate],
        "serial": [serial],
        "invalid_serial": [serial],
        "listing_id": [listing["id"]],
        "quote_id": [quote_.json()["id"]],
        "reference": [reference],
        "gateway": ["sandbox", "offline"],
        "kind": ["projects", "units", "transactions"],
        "fmt": ["csv", "json"],
        "vintage": ["2025"],
    }
    return World(keys=keys, known=known)


# --- what goes wrong in a value ----------------------------------------------------------------------

ODD_NUMBERS = [-1, 0, -(2**63) - 1, 2**63, 2**64, 10**30, 1.5, -0.0, 1e308, 1.0]
WRONG_TYPES: list[Any] = [None, True, False, "x", "12", [], [1, "a"], {}, {"a": 1}]
JUNK = st.one_of(
    st.sampled_from([*ODD_TEXT, *ODD_NUMBERS, *WRONG_TYPES]),
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=False),
)


class Schemas:
    """Strategies for the values an OpenAPI schema describes, resolving ``$ref`` against the app's."""

    def __init__(self, components: dict[str, Any], known: dict[str, list[str]]) -> None:
        self.components = components
        self.known = known

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def fit(self, schema: dict[str, Any], name: str = "") -> st.SearchStrategy[Any]:
        """Values that the schema admits (roughly: the server may still find them wrong)."""
        schema = self.resolve(schema)
        drawn = self._fit(schema)
        choices = [str(v) for v in self.known.get(name, [])]
        if name in self.known and schema.get("type") == "integer":
            return st.one_of(st.sampled_from([int(v) for v in choices]), drawn)
        if choices and schema.get("type") in ("string", None):
            return st.one_of(st.sampled_from(choices), drawn)
        if "examples" in schema:
            return st.one_of(st.sampled_from(schema["examples"]), drawn)
        return drawn

    def _fit(self, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        if "anyOf" in schema:
            return st.one_of([self.fit(option) for option in schema["anyOf"]])
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            items = schema.get("items") or {}
            element = self.fit(items) if items else st.dictionaries(st.text(max_size=8), JUNK, max_size=3)
            low = schema.get("minItems", 0)
            return st.lists(element, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
        if kind == "integer":
            low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**6)) + 1)
            return st.integers(int(low), int(schema.get("maximum", 10**9)))
        if kind == "number":
            return st.integers(1, 10**6)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "string":
            return self._string(schema)
        return JUNK

    def _object(self, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields = {name: self.fit(sub, name) for name, sub in properties.items()}
        return st.fixed_dictionaries(
            {name: fields[name] for name in fields if name in required},
            optional={name: fields[name] for name in fields if name not in required},
        )

    def _string(self, schema: dict[str, Any]) -> st.SearchStrategy[str]:
        if schema.get("format") == "date":
            return st.dates(date(1990, 1, 1), date(2100, 12, 31)).map(date.isoformat)
        if schema.get("contentMediaType"):
            return st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
        low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
        if "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
            return text.filter(lambda s: low <= len(s) <= high)
        return st.text(string.ascii_letters + string.digits + "-", min_size=low, max_size=min(high, low + 20))


# --- spoiling a request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None
    files: dict[str, Any] | None = None

    def describe(self) -> str:
        body = (self.content or b"")[:300]
        return f"{self.method} {self.url[:300]} {self.headers} {body!r} files={self.files!r:.200}"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place inside a JSON value where a value sits."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield (*prefix, name)
            yield from _paths(inner, (*prefix, name))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def _dropped(value: Any, path: tuple[Any, ...]) -> Any:
    head, rest = path[0], path[1:]
    if not rest:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k != head}
        return [v for i, v in enumerate(value) if i != head]
    if isinstance(value, dict):
        return {**value, head: _dropped(value[head], rest)}
    return [_dropped(v, rest) if i == head else v for i, v in enumerate(value)]


@st.composite
def spoilt_json(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> tuple[bytes, str]:
    """A JSON body and its Content-Type, most often with one thing wrong."""
    body = draw(valid)
    places = list(_paths(body))
    how = draw(
        st.sampled_from(["as is", "wrong value", "drop", "extra", "whole", "not json", "content type"])
    )
    if how == "wrong value" and places:
        body = _replaced(body, draw(st.sampled_from(places)), draw(JUNK))
    elif how == "drop" and places:
        body = _dropped(body, draw(st.sampled_from(places)))
    elif how == "extra":
        container = draw(st.sampled_from([(), *(p for p in places if isinstance(_at(body, p), dict))]))
        extra = {**_at(body, container), draw(st.sampled_from(["extra", "", "__proto__", "王"])): draw(JUNK)}
        body = _replaced(body, container, extra) if container else extra
    elif how == "whole":
        body = draw(JUNK)
    if how == "not json":
        text = draw(
            st.sampled_from(
                [b"", b"{", b"[1,", b"{'a': 1}", b"NaN", b'{"kg": NaN}', b'{"kg_co2e": Infinity}',
                 b"\xff\xfe{}", b"null", b'"just a string"', b"1" * 5_000, b"[" * 2_000 + b"]" * 2_000]
            )
        )  # fmt: skip
        return text, "application/json"
    ascii_only = draw(st.booleans())
    text = json.dumps(body, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")
    if how == "content type":
        return text, draw(
            st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "", "application/xml"])
        )
    return text, "application/json"


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def spoilt_file(draw: st.DrawFn) -> dict[str, Any] | None:
    """An upload: a name with any ending, and content that may be empty, binary or half a table."""
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    name = draw(st.sampled_from(["a.csv", "a.jsonl", "a.parquet", "a.txt", "", "..", "a", "王.csv", "a.CSV"]))
    content = draw(
        st.one_of(
            st.sampled_from(
                [b"", b"\xff\xfe\x00", b"a,b\n1,2\n", b'{"type": "meal"}\n{', b"PAR1garbage",
                 b"account_ref,external_id\n,\n", b"\x00" * 100, "王,芳\n1,2\n".encode("gb18030")]
            ),
            st.binary(max_size=200),
        )
    )  # fmt: skip
    field = draw(st.sampled_from(["file", "file", "other"]))
    return {field: (name, content)}


def _role_for(rule: Rule) -> st.SearchStrategy[Role | None]:
    """A role whose key the rule admits (``None``: a public route, called also with a key)."""
    if rule.access in (Access.PUBLIC, Access.LINK):
        return st.sampled_from([None, *Role])
    admitted = [
        role for role in Role if rule.admits(Actor("someone", role, None if role is Role.ADMIN else "org"))
    ]
    assert admitted, f"no role may call {rule}"
    return st.sampled_from(admitted)


@st.composite
def spoilt_request(
    draw: st.DrawFn, method: str, path: str, operation: dict[str, Any], schemas: Schemas
) -> Request:
    url = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        name = parameter["name"]
        value = draw(
            st.one_of(
                st.sampled_from(schemas.known.get(name, ["missing"])),
                st.sampled_from(PATH_JUNK),
                st.text(max_size=40).map(lambda s: quote(s, safe="")),
            )
        )
        url = url.replace(f"{{{name}}}", value)
    pairs = []
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        name, schema = parameter["name"], schemas.resolve(parameter["schema"])
        how = draw(st.sampled_from(["omit", "fit", "junk"]))
        if how == "omit":
            continue
        value = draw(schemas.fit(schema, name)) if how == "fit" else draw(st.sampled_from(QUERY_JUNK))
        pairs.append(f"{quote(name)}={value if how == 'junk' else quote(str(value), safe='')}")
    if draw(st.booleans()):
        pairs.append(draw(st.sampled_from(["unknown=1", "page=1&page=2", "%ff=%fe", "&&=&", "a"])))
    if pairs:
        url += "?" + "&".join(pairs)
    headers: dict[str, str] = {}
    content = files = None
    media = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in media:
        files = draw(spoilt_file())
        if files is None:
            content, headers["content-type"] = draw(spoilt_json(st.just({"file": "x"})))
    elif "application/json" in media:
        valid = schemas.fit(media["application/json"]["schema"])
        content, headers["content-type"] = draw(spoilt_json(valid))
    elif method == "POST":  # no declared body (webhooks read theirs raw): send one anyway
        content, headers["content-type"] = draw(spoilt_json(st.dictionaries(st.text(max_size=8), JUNK)))
    if headers.get("content-type") == "":
        del headers["content-type"]
    return Request(method, url, headers, content, files)


# --- the property ----------------------------------------------------------------------------------------


def assert_answered_well(response: httpx.Response, request: Request) -> None:
    where = f"{response.status_code} {response.text[:500]}\n  for {request.describe()}"
    assert response.status_code < 500, where
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", "").startswith("application/json"), where
    problem = response.json()
    assert isinstance(problem, dict) and problem.get("code") in CODES, where
    assert isinstance(problem.get("message"), str) and problem["message"], where
    for inner in problem.get("problems", []):
        assert inner.get("code") in CODES, where


def send(client: TestClient, request: Request, headers: dict[str, str]) -> httpx.Response:
    return client.request(
        request.method,
        request.url,
        content=request.content,
        files=request.files,
        headers={**request.headers, **headers},
        follow_redirects=False,
    )


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_bad_input_gets_a_coded_problem_and_never_a_server_error(
    client: TestClient, world: World, admin: dict[str, str], method: str, path: str
) -> None:
    openapi = client.app.openapi()  # type: ignore[attr-defined]
    operation = openapi["paths"].get(path, {}).get(method.lower())
    assert operation is not None, f"{method} {path} is in RULES but not in the app's OpenAPI description"
    schemas = Schemas(openapi["components"]["schemas"], world.known)
    rule = RULES[(method, path)]

    @settings(
        max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
    )
    @given(request=spoilt_request(method, path, operation, schemas), role=_role_for(rule))
    def check(request: Request, role: Role | None) -> None:
        credential = world.keys[role] if role is not None else {}
        assert_answered_well(send(client, request, credential), request)
        assert_answered_well(send(client, request, {}), request)

    check()
    # and what was refused kept nothing half-done: every ledger's own check still passes
    assert ledgers_whole(client) == []


# --- what the property found, one case each -------------------------------------------------------------


def test_a_path_no_json_route_matches_answers_a_problem(client: TestClient) -> None:
    # an escaped slash, or a ".." the client resolves, leaves a path no route matches
    for url in ("/api/v1/orders/a%2Fb", "/api/v1/certificates/../pdf", "/.well-known/nothing"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["code"] == "not_found", response.text
    # and a method the route does not take
    response = client.delete("/api/v1/listings")
    assert response.status_code == 405 and response.json()["code"] == "invalid_request", response.text
    assert "GET" in response.headers["allow"]


def test_a_json_body_that_is_not_utf8_answers_a_problem(client: TestClient) -> None:
    # the framework refuses it before validation, with its own 400; it still carries a code
    response = client.post(
        "/api/v1/footprints", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_request", response.text


def test_text_no_database_can_keep_is_refused_wherever_it_sits(
    client: TestClient, admin: dict[str, str]
) -> None:
    # a NUL in the path or the query (PostgreSQL's text cannot hold one)
    for url, field in (
        ("/api/v1/orders/a%00b", "order_id"),
        ("/api/v1/registry/projects?standard=%00", "standard"),
    ):
        response = client.get(url)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_text" and response.json()["problems"][0]["field"] == field
    # and in a JSON body, a NUL or a lone surrogate (no database can encode one), keys included
    json_ = {"content-type": "application/json", **admin}
    for body, field in (
        (rb'{"name": "a\u0000b"}', "name"),
        (rb'{"name": "a\ud800"}', "name"),
        (rb'{"name": "x", "\u0000": 1}', "\x00"),
    ):
        response = client.post("/api/v1/registry/organisations", content=body, headers=json_)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_text" and response.json()["problems"][0]["field"] == field
    # while a character spelt as a surrogate pair is text like any other
    response = client.post(
        "/api/v1/registry/organisations", content=rb'{"name": "\ud83c\udf33 Org"}', headers=json_
    )
    assert response.status_code == 201 and response.json()["name"] == "🌳 Org", response.text
    # and the door comes first: a stranger learns nothing from the text check
    response = client.post("/api/v1/registry/organisations", content=rb'{"name": "a\u0000"}')
    assert response.status_code == 401, response.text


def test_the_ledger_check_sees_a_total_that_does_not_add_up(client: TestClient, world: World) -> None:
    """The check each route ends with can fail: one gram added behind the history's back is found."""
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    grow = text(
        "UPDATE carbon_accounts SET credited_g = credited_g + :g "
        "WHERE id = (SELECT min(id) FROM carbon_accounts)"
    )
    with unit_of_work(factory) as session:
        session.execute(grow, {"g": 1})
    try:
        assert ledgers_whole(client) != []
    finally:
        with unit_of_work(factory) as session:
            session.execute(grow, {"g": -1})
    assert ledgers_whole(client) == []
