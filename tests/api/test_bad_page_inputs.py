"""Bad input to every page that takes input answers a coded page, never a server error.

Each page route of api/authorisation.RULES that reads a form, a query or a path parameter gets
requests drawn by Hypothesis, then spoilt: a field left out, empty, very long, non-ASCII, with
control characters or a NUL (as a character and as the text ``%00``), a lone surrogate (a multipart
form in UTF-7 is the one transport that carries one as far as the route), numbers negative, huge,
fractional or not numbers, a CSRF token wrong, missing or odd, a body that is not a form, path
parameters that name nothing or are junk, odd query values, and, for the upload form, junk files.
Each request goes from a browser of a role the rule admits, signed in by its session cookie.

What must hold: no answer is a 5xx; every 4xx is an HTML page whose ``data-code`` attributes are all
``ErrorCode`` values, with at least one (a page that shows its form again with what was wrong shows
each problem as ``class="problem" data-code="..."``, the same as the problem page does); and
afterwards the registry still balances, so a refused request kept nothing half-done.

The number of examples per route follows the Hypothesis profile (a handful by default; many more
with ``HYPOTHESIS_PROFILE=stress``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neutralize.access import users
from neutralize.access.domain import Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.api.authorisation import RULES, Access
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_session_factory, unit_of_work
from tests.api import junk
from tests.api.factories import NOW, PASSWORD, form_token, ledgers_whole, registered_project, signed_in
from tests.api.junk import CODES, EXAMPLES

API = ("/api/", "/.well-known/", "/openapi.json", "/docs", "/redoc", "/healthz")
CSRF_COOKIE, SESSION_COOKIE = "nz_csrf", "nz_session"
_numbers = iter(range(1, 10**9))

# --- the rows and the people the requests act as ---------------------------------------------------


@dataclass
class World:
    """Real rows and signed-in browsers' cookies, so that a spoilt request gets past the door."""

    client: TestClient
    admin: dict[str, str]
    sessions: dict[str, str]  # role name -> session cookie ("anonymous": none)
    known: dict[str, list[str]]  # a path parameter's or a field's name -> values that exist


def _person(client: TestClient, role: Role, organisation_id: str | None) -> tuple[str, str]:
    """A user of ``role`` signed in by the login form: (user id, session cookie)."""
    email = f"pagefuzz{next(_numbers)}@example.org"
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        cmd = users.SignUp(email=email, password=PASSWORD, display_name="Fuzz")
        user = users.sign_up(
            session=session, clock=FixedClock(NOW), cmd=cmd, role=role, organisation_id=organisation_id
        )
    web = TestClient(client.app)
    body = {"email": email, "password": PASSWORD, "csrf_token": form_token(web, "/login")}
    assert web.post("/login", data=body, follow_redirects=False).status_code == 303
    return user.id, web.cookies[SESSION_COOKIE]


def _carbon(client: TestClient, partner_id: str, integrator_id: str, member_id: str) -> dict[str, list[str]]:
    """Partner A's carbon account linked to the member, a benefit of the partner's, two consents."""
    clock = FixedClock(NOW)
    credited = intake.Credited(
        external_id="pagefuzz-trip",
        behaviour="public_transport",
        started_at=NOW,
        ended_at=NOW,
        measures={},
        grams=10_000,
        code=None,
        methodology="public_transport@1.0.0",
        parameters_sha256=None,
    )
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        intake.keep(session=session, clock=clock, partner_id=partner_id, reference="pf", outcomes=[credited])
        partner = Actor(integrator_id, Role.INTEGRATOR, partner_id)
        code, _ = accounts.issue_link_code(session=session, clock=clock, actor=partner, reference="pf")
        account = accounts.confirm_link(session=session, clock=clock, user_id=member_id, code=code)
        offer = accounts.BenefitCreate(title="Coffee", points=1)
        benefit = accounts.publish_benefit(session=session, clock=clock, actor=partner, cmd=offer)
        consents = [
            accounts.grant_consent(session=session, clock=clock, user_id=member_id, partner_id=partner_id).id
            for _ in range(2)
        ]
    return {
        "account_id": [account.id],
        "benefit_id": [benefit.id],
        "partner_id": [partner_id],
        "consent_id": consents,
    }


def _order(client: TestClient, listing: str, pay: bool) -> tuple[str, str]:
    quote_ = client.post("/api/v1/quotes", json={"kg": 2, "listing_id": listing})
    assert quote_.status_code == 201, quote_.text
    body = {
        "quote_id": quote_.json()["id"],
        "beneficiary": {"display_name": "Guest"},
        "idempotency_key": f"pagefuzz-{next(_numbers)}",
    }
    order = client.post("/api/v1/orders", json=body).json()
    ref = order["next_action"]["url"].rsplit("/", 1)[1]
    if pay:
        assert client.post(f"/api/v1/payments/sandbox/{ref}", json={}).status_code == 200
    return order["id"], ref


@pytest.fixture(scope="module")
def world(client: TestClient, admin: dict[str, str], listing: dict[str, Any]) -> World:
    code, _owner, org = registered_project(client, admin)
    people = {
        role.value: _person(client, role, org["id"] if role is Role.INTEGRATOR else None)
        for role in (Role.MEMBER, Role.ORGANISER, Role.INTEGRATOR, Role.ADMIN)
    }
    sessions = {name: cookie for name, (_id, cookie) in people.items()}
    order, ref = _order(client, listing["id"], pay=False)
    paid, _ = _order(client, listing["id"], pay=True)
    certificate = client.get(f"/api/v1/orders/{paid}").json()["certificate_number"]
    footprint = client.post(
        "/api/v1/footprints", json={"activities": [{"type": "meal", "diet": "vegan", "count": 1}]}
    ).json()["id"]
    organiser = TestClient(client.app, cookies={SESSION_COOKIE: sessions["organiser"]})
    scene = "pagefuzz-forum"
    body = {
        "name": "Forum",
        "slug": scene,
        "type": "conference",
        "csrf_token": form_token(organiser, "/organiser"),
    }
    assert organiser.post("/organiser/scenes", data=body, follow_redirects=False).status_code == 303
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        member = Actor(people["member"][0], Role.MEMBER)
        key_id = users.create_user_key(session=session, clock=FixedClock(NOW), actor=member, label="k").id
    known = {
        "order_id": [order, paid],
        "provider_ref": [ref],
        "number": [certificate],
        "footprint_id": [footprint],
        "listing_id": [listing["id"]],
        "code": [code, listing["project_code"]],
        "slug": [scene],
        "key_id": [key_id],
        "token": ["usr_x.1.mac"],
        "kind": ["png", "svg", "pdf"],
        "q": ["NZ-" + code, "VCS-1-2"],
        "api_key": [admin["Authorization"][7:]],
        **_carbon(client, org["id"], people["integrator"][0], people["member"][0]),
    }
    return World(client, admin, sessions, known)


# --- what each page takes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """How a page is called: who (a role name, or "anonymous"), and a valid-looking form or query."""

    who: str = "anonymous"
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


PLAN = {
    "expected_attendees": "10",
    "expected_kg": "500",
    "reduction_plan": "Trains",
    "starts_on": "2026-11-20",
    "ends_on": "2026-11-21",
    "destination_airport": "CTU",
}
REGISTRATIONS = b"reference,origin,distance_km,mode,nights,hotel_country\nR-1,PEK,,,1,\n"
ORGANISER = "/organiser/scenes/{slug}"

FORMS: dict[tuple[str, str], Form] = {
    ("POST", "/"): Form(
        fields={
            "origin": "PEK",
            "destination": "CTU",
            "round_trip": "true",
            "cabin": "economy",
            "hotel_country": "CN",
            "nights": "2",
            "region": "CN",
            "kwh": "10",
            "diet": "vegan",
            "meals": "3",
        }
    ),
    ("GET", "/offset"): Form(
        fields={
            "kg_co2e": "3",
            "listing_id": "{listing_id}",
            "preference": "cheapest",
            "footprint_id": "{footprint_id}",
            "participation": "p",
        }
    ),
    ("POST", "/offset"): Form(
        fields={
            "quote_id": "q_none",
            "idempotency_key": "pagefuzz-key",
            "display_name": "Guest",
            "reason": "Offsetting",
            "participation": "",
        }
    ),
    ("POST", "/orders/{order_id}/claim"): Form("member"),
    ("POST", "/sandbox/pay/{provider_ref}"): Form(fields={"outcome": "failed"}),
    ("POST", "/signup"): Form(
        fields={"email": "new@example.org", "password": "a long password here", "display_name": "Li"}
    ),
    ("POST", "/login"): Form(fields={"email": "nobody@example.org", "password": "a long password here"}),
    ("POST", "/account/keys"): Form("member", {"label": "mine"}),
    ("POST", "/account/keys/{key_id}/revoke"): Form("member"),
    ("POST", "/password-reset"): Form(fields={"email": "nobody@example.org"}),
    ("POST", "/password-reset/{token}"): Form(fields={"password": "a long password here"}),
    ("GET", "/admin"): Form("admin"),
    ("POST", "/admin/login"): Form(fields={"api_key": "{api_key}"}),
    ("POST", "/s/{slug}"): Form(
        fields={
            "travel_mode": "rail",
            "distance_km": "100",
            "round_trip": "on",
            "diet": "vegan",
            "show_name": "true",
            "display_name": "Li",
            "registration_ref": "R-1",
        }
    ),
    ("POST", "/organiser/scenes"): Form(
        "organiser",
        {"slug": "pagefuzz-x", "type": "hotel", "name": "Hotel", "country": "CN", "region": "CN-SC"},
    ),
    ("POST", ORGANISER + "/neutrality/plan"): Form("organiser", PLAN),
    ("POST", ORGANISER + "/neutrality/measures"): Form(
        "organiser", {"description": "Trains", "evidence": "ticket", "saved_kg": "5"}
    ),
    ("POST", ORGANISER + "/neutrality/registrations"): Form(
        "organiser", files={"registration_list": ("list.csv", REGISTRATIONS)}
    ),
    ("POST", ORGANISER + "/neutrality/items"): Form(
        "organiser", {"kind": "electricity", "qualifier": "CN", "quantity": "100", "source": "meter"}
    ),
    ("POST", ORGANISER + "/neutrality/offsets"): Form(
        "organiser", {"listing_id": "{listing_id}", "kg": "1", "idempotency_key": "pagefuzz-offset"}
    ),
    ("POST", ORGANISER + "/neutrality/allowances"): Form("organiser", {"reference": "CEA-1", "tonnes": "1"}),
    ("POST", ORGANISER + "/neutrality/evaluation"): Form(
        "organiser", {"kind": "third_party", "evaluator": "CQC", "reference": "r"}
    ),
    ("GET", "/leaderboards"): Form(fields={"me": "p_none", "by": "people"}),
    ("GET", "/leaderboards/{slug}"): Form(fields={"me": "p_none", "by": "organisations"}),
    ("POST", "/carbon/link"): Form("member", {"code": "ABCD-EFGH"}),
    ("POST", "/carbon/redeem"): Form(
        "member",
        {"account_id": "{account_id}", "benefit_id": "{benefit_id}", "idempotency_key": "pagefuzz-redeem"},
    ),
    ("POST", "/carbon/consents"): Form("member", {"partner_id": "{partner_id}"}),
    ("POST", "/carbon/consents/{consent_id}/withdraw"): Form("member"),
    ("GET", "/registry/serials"): Form(fields={"q": "{q}"}),
}


def _who(method: str, path: str) -> str:
    """The role a page is called as: the form's, else the first its rule admits."""
    if (method, path) in FORMS:
        return FORMS[(method, path)].who
    rule = RULES[(method, path)]
    if rule.access in (Access.PUBLIC, Access.LINK):
        return "anonymous"
    if path.startswith("/organiser"):
        return "organiser"
    return "integrator" if path == "/partner" else "member"


PAGES = sorted((m, p) for (m, p) in RULES if not p.startswith(API))

# --- what goes wrong in a value -------------------------------------------------------------------------

ODD_TEXT = [
    *junk.ODD_TEXT,
    "a\x00b",
    "%00",
    "\r\nX-Injected: 1",
    "<script>x</script>",
    "Infinity",
    "0",
    "1.5",
    "99999999999999999999999",
    "-99999999999999999999",
    "0x10",
    "١٢",
    "true",
    "null",
    "2026-02-30",
    "9999-12-31",
    "0000-00-00",
]
JUNK = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=30), st.integers().map(str))
PATH_JUNK = [*junk.PATH_JUNK, "a%00b", "%ED%A0%80"]
QUERY_JUNK = [*junk.QUERY_JUNK, "1e400", "NaN", "a%00b", "%ED%A0%80"]
EXTRA_QUERY = [
    "lang=xx",
    "lang=%00",
    "lang=" + "z" * 3_000,
    "page=1&page=2",
    "%ff=%fe",
    "&&=&",
    "a",
    "lang=zh",
]
CSRF_JUNK = ["", "x", "a\x00b", "\ud800", "王" * 43, "x" * 43, "x" * 5_000]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    who: str
    csrf: str  # the browser's cookie (the form's token may differ from it)

    def describe(self) -> str:
        return f"{self.who}: {self.method} {self.url[:300]} {self.headers} {(self.content or b'')[:400]!r}"


def _encoded(pairs: list[tuple[str, str]]) -> bytes:
    """A urlencoded form; a lone surrogate goes as its UTF-8 bytes (the server decodes them as U+FFFD)."""
    return "&".join(
        f"{quote_plus(k, errors='surrogatepass')}={quote_plus(v, errors='surrogatepass')}" for k, v in pairs
    ).encode("ascii")


def _multipart(
    pairs: list[tuple[str, str]], files: list[tuple[str, tuple[str, bytes]]], charset: str
) -> tuple[bytes, str]:
    """A multipart form in ``charset`` (UTF-7 carries a lone surrogate, and the server decodes it)."""
    boundary = "pagefuzz" + secrets.token_hex(8)
    parts: list[bytes] = []
    for name, value in pairs:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode(charset, "surrogatepass") + value.encode(charset, "surrogatepass") + b"\r\n")
    for name, (filename, content) in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode(charset, "surrogatepass") + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}; charset={charset}"


@st.composite
def junk_file(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(["a.csv", "a.txt", "", "..", "王.csv", "a\x00.csv", "x" * 300]))
    content = draw(
        st.one_of(
            st.sampled_from(
                [
                    b"",
                    b"\xff\xfe\x00",
                    b"a,b\n1,2\n",
                    b"\x00" * 100,
                    "王,芳\n1,2\n".encode("gb18030"),
                    REGISTRATIONS.replace(b"PEK", b"P\x00K"),
                    REGISTRATIONS + b"R-2,PEK,-5,,1e400,\n",
                    REGISTRATIONS + b"R-3," + b"x" * 5_000 + b",,,,\n",
                    b"reference\n" + b"R\n" * 20_000,
                    b"x" * (1024 * 1024 + 1),
                ]
            ),
            st.binary(max_size=200),
        )
    )
    return name, content


def _fill(template: str, known: dict[str, list[str]], draw: st.DrawFn) -> str:
    """A form's value, with ``{name}`` replaced by a row that exists."""
    match = re.fullmatch(r"\{(\w+)\}", template)
    return draw(st.sampled_from(known[match.group(1)])) if match else template


@st.composite
def spoilt_request(draw: st.DrawFn, method: str, path: str, world: World) -> Request:
    url = path
    for name in re.findall(r"\{(\w+)\}", path):
        value = draw(
            st.one_of(
                st.sampled_from(world.known.get(name, ["missing"])),
                st.sampled_from(PATH_JUNK),
                st.text(max_size=40).map(lambda s: quote(s, safe="", errors="surrogatepass")),
            )
        )
        url = url.replace(f"{{{name}}}", value)
    form = FORMS.get((method, path), Form(_who(method, path)))
    pairs = [(name, _fill(value, world.known, draw)) for name, value in form.fields.items()]
    files = list(form.files.items())
    how = draw(
        st.sampled_from(["as is", "drop", "odd", "extra", "twice", "files", "multipart", "not a form"])
    )
    if how == "drop" and pairs:
        pairs.pop(draw(st.integers(0, len(pairs) - 1)))
    elif how == "drop" and files:
        files = []
    elif how == "odd" and pairs:
        index = draw(st.integers(0, len(pairs) - 1))
        pairs[index] = (pairs[index][0], draw(JUNK))
    elif how == "extra":
        pairs.append((draw(st.sampled_from(["extra", "", "王", "\x00", "a" * 300])), draw(JUNK)))
    elif how == "twice" and pairs:
        pairs.append((draw(st.sampled_from(pairs))[0], draw(JUNK)))
    elif how == "files" and files:
        files = [(draw(st.sampled_from([files[0][0], "other"])), draw(junk_file()))]
    who = form.who if draw(st.integers(0, 3)) else "anonymous"  # now and then, a stranger
    cookie = secrets.token_urlsafe(32)
    headers: dict[str, str] = {}
    content: bytes | None = None
    if method == "GET":
        query = [f"{quote(k)}={quote(v, safe='', errors='surrogatepass')}" for k, v in pairs]
        if how == "odd" and query:
            index = draw(st.integers(0, len(query) - 1))
            query[index] = f"{pairs[index][0]}={draw(st.sampled_from(QUERY_JUNK))}"
        if draw(st.booleans()):
            query.append(draw(st.sampled_from(EXTRA_QUERY)))
        if query:
            url += "?" + "&".join(query)
        return Request(method, url, headers, None, who, cookie)
    token = cookie if draw(st.integers(0, 3)) else draw(st.sampled_from(CSRF_JUNK))
    if draw(st.integers(0, 9)):
        pairs.append(("csrf_token", token))
    if how == "not a form":
        content = draw(
            st.sampled_from([b"", b"{}", b'{"csrf_token": "x"}', b"\xff\xfe", b"=" * 100, b"%" * 10])
        )
        kind = draw(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "multipart/form-data; boundary=x",
                ]
            )
        )
        if kind:
            headers["content-type"] = kind
    elif files or how == "multipart":
        charset = draw(st.sampled_from(["utf-8", "utf-7", "latin-1", "utf-16", "nonsense"]))
        if charset == "utf-7" and pairs and draw(st.booleans()):
            index = draw(st.integers(0, len(pairs) - 1))
            pairs[index] = (pairs[index][0], pairs[index][1] + "\ud800")
        encodable = charset if charset in ("utf-8", "utf-7") else "utf-8"
        content, headers["content-type"] = _multipart(pairs, files, encodable)
        headers["content-type"] = headers["content-type"].replace(
            f"charset={encodable}", f"charset={charset}"
        )
    else:
        content = _encoded(pairs)
        headers["content-type"] = "application/x-www-form-urlencoded"
    return Request(method, url, headers, content, who, cookie)


# --- the property ------------------------------------------------------------------------------------------

_DATA_CODE = re.compile(r'data-code="([^"]*)"')


def assert_answered_well(response: httpx.Response, request: Request) -> None:
    where = f"{response.status_code} {response.text[:600]}\n  for {request.describe()}"
    assert response.status_code < 500, where
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", "").startswith("text/html"), where
    codes = _DATA_CODE.findall(response.text)
    assert codes, f"a {response.status_code} page without a data-code: {where}"
    assert set(codes) <= CODES, f"data-codes {set(codes) - CODES} are not ErrorCode values: {where}"
    assert re.search(r'class="problem[^"]*"[^>]*data-code=', response.text), where


def send(world: World, request: Request) -> httpx.Response:
    cookies = {CSRF_COOKIE: request.csrf}
    if request.who != "anonymous":
        cookies[SESSION_COOKIE] = world.sessions[request.who]
    browser = TestClient(world.client.app, cookies=cookies)
    return browser.request(
        request.method, request.url, content=request.content, headers=request.headers, follow_redirects=False
    )


@pytest.mark.parametrize(("method", "path"), PAGES, ids=[f"{m} {p}" for m, p in PAGES])
def test_bad_page_input_gets_a_coded_page_and_never_a_server_error(
    world: World, admin: dict[str, str], method: str, path: str
) -> None:
    @settings(
        max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
    )
    @given(request=spoilt_request(method, path, world))
    def check(request: Request) -> None:
        assert_answered_well(send(world, request), request)

    check()
    # and what was refused kept nothing half-done: every ledger's own check still passes
    assert ledgers_whole(world.client) == []


def test_every_field_a_page_declares_is_fuzzed(world: World) -> None:
    # a new form field or query parameter of a page needs its place in FORMS, so that it is spoilt too
    missing = []
    for route in world.client.app.routes:  # type: ignore[attr-defined]
        dependant = getattr(route, "dependant", None)
        if dependant is None or route.path.startswith(API):
            continue
        for method in route.methods - {"HEAD"}:
            form = FORMS.get((method, route.path), Form())
            fields = {**form.fields, **form.files, "csrf_token": ""}
            declared = [*dependant.query_params, *dependant.body_params]
            declared += [p for d in dependant.dependencies for p in (*d.query_params, *d.body_params)]
            missing += [f"{method} {route.path}: {p.alias}" for p in declared if p.alias not in fields]
    assert not missing, missing


# --- what the property found, one case each -------------------------------------------------------------


def _coded(response: httpx.Response, status: int, code: str) -> bool:
    return (
        response.status_code == status
        and response.headers["content-type"].startswith("text/html")
        and re.search(f'class="problem[^"]*"[^>]*data-code="{code}"', response.text) is not None
    )


def test_a_page_answers_what_it_refuses_as_a_coded_page_not_json(client: TestClient) -> None:
    web = TestClient(client.app)
    token = form_token(web, "/login")
    # a path no page matches, and a method a page does not take
    assert _coded(web.get("/no/such/page"), 404, "not_found")
    assert _coded(web.get("/orders/a%2Fb"), 404, "not_found")
    refused = web.delete("/login")
    assert _coded(refused, 405, "invalid_request") and refused.headers["allow"]
    # a form whose token is wrong, or that lacks a field the route needs
    assert _coded(
        web.post("/login", data={"email": "a@b.org", "password": "x", "csrf_token": "x"}), 403, "csrf_failed"
    )
    missing = web.post("/login", data={"email": "a@b.org", "csrf_token": token})
    assert _coded(missing, 422, "missing_field") and "password" in missing.text
    # a query value the page does not know, and a body the framework cannot parse
    assert _coded(web.get("/leaderboards?by=x"), 422, "unknown_value")
    unparsed = web.post("/login", content=b"", headers={"content-type": "multipart/form-data"})
    assert _coded(unparsed, 400, "invalid_request")
    # a body over the limit, refused before any route reads it
    big = web.post(
        "/login", content=b"x" * 70_000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert _coded(big, 413, "payload_too_large")
    assert web.post("/api/v1/footprints", content=b"x" * 70_000).json()["code"] == "payload_too_large"
    # a page's problem is translated like any other
    assert "未找到" in web.get("/no/such/page?lang=zh").text
    # while the API keeps its JSON problems
    assert web.get("/api/v1/nothing").json()["code"] == "not_found"


def test_a_page_refuses_text_no_database_can_keep(client: TestClient, admin: dict[str, str]) -> None:
    web = TestClient(client.app)
    token = form_token(web, "/login")
    # a NUL in the path, the query or a form field (PostgreSQL's text cannot hold one)
    assert _coded(web.get("/orders/a%00b"), 422, "invalid_text")
    assert _coded(web.get("/registry/serials?q=NZ-%00"), 422, "invalid_text")
    nul = web.post(
        "/signup",
        content=f"email=a%00@b.org&password=x&display_name=x&csrf_token={token}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert _coded(nul, 422, "invalid_text") and "email" in nul.text
    # a lone surrogate, which a multipart form in UTF-7 carries (+2AA- is U+D800)
    body, content_type = _multipart(
        [("email", "a\ud800"), ("password", "x"), ("csrf_token", token)], [], "utf-7"
    )
    assert _coded(
        web.post("/login", content=body, headers={"content-type": content_type}), 422, "invalid_text"
    )
    # a form the route reads itself (a scene's calculator) is checked too
    scene = TestClient(client.app)
    owner = signed_in(client, Role.ORGANISER, None)
    slug = f"textcheck-{next(_numbers)}"
    made = owner.post(
        "/organiser/scenes",
        data={
            "slug": slug,
            "type": "conference",
            "name": "Forum",
            "csrf_token": form_token(owner, "/organiser"),
        },
    )
    assert made.status_code == 200, made.text
    scene_token = form_token(scene, f"/s/{slug}")
    taken = scene.post(
        f"/s/{slug}",
        content=f"travel_mode=rail&distance_km=5&show_name=true&display_name=a%00&csrf_token={scene_token}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert _coded(taken, 422, "invalid_text"), taken.text[:500]
    # and an uploaded registration list with a NUL in a row
    upload = owner.post(
        f"/organiser/scenes/{slug}/neutrality/registrations",
        data={"csrf_token": form_token(owner, "/organiser")},
        files={"registration_list": ("list.csv", REGISTRATIONS.replace(b"PEK", b"P\x00K"))},
    )
    assert _coded(upload, 422, "invalid_text"), upload.text[:500]
