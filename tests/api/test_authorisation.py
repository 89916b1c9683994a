"""Every route of the app has a rule in api/authorisation.RULES, and every role gets what the rule says.

The matrix: each route × each actor — anonymous, each of the six roles (a signed-in user with a
session cookie on pages, an API key on /api), and for "owner" rules another organisation's (or
person's) actor of the owning role — makes a real request against real rows (organiser A's scene,
member A's key, organisation A's project, a guest's order) and checks the class of the answer.

Refused: 401 or 403, a page's redirect to /login, or — for "owner" rules, where what is not yours
answers like what does not exist — 404. Allowed: anything else below 500 (a 409 or 422 means the
request got past the door and met a problem with its body or state).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, Route

from neutralize.access import users
from neutralize.access.domain import Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.api.authorisation import RULES, Access, Rule
from neutralize.app import create_app
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.db import make_session_factory, unit_of_work
from tests.api.factories import NOW, form_token, key, organisation, registered_project
from tests.conftest import fresh_database

PASSWORD = "a password long enough"
_numbers = itertools.count(1)


def _routes(routes: list[BaseRoute]) -> Iterator[Route]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, Route):  # APIRoute is one too
            yield route


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every route; HEAD goes with GET."""
    return {
        (method, route.path)
        for route in _routes(app.routes)
        for method in (route.methods or ())
        if method != "HEAD"
    }


# --- the world the requests act on ---------------------------------------------------------------


@dataclass
class Someone:
    """One actor of the matrix: a browser signed in as a user, and an API key of the same role."""

    name: str
    role: Role | None
    organisation: str | None  # "A", "B" or None
    web: TestClient
    headers: dict[str, str] = field(default_factory=dict)
    user_id: str = ""
    csrf: str = ""
    email: str = ""


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    org_a: str
    project: str
    listing: str
    order: str
    payment_ref: str
    certificate: str
    footprint: str
    serial: str
    scene: str
    member_key: str
    people: dict[str, Someone]
    carbon_reference: str  # partner A's account, linked to member A
    carbon_account: str
    benefit: str  # offered by partner A
    consent: str  # member A lets partner A read their level
    withdrawable: str  # another such consent, for the withdrawal

    def draft_project(self) -> str:
        code = f"AUTHZ-D{next(_numbers)}"
        body = {**PROJECT, "code": code, "owner_organisation_id": self.org_a}
        response = self.client.post("/api/v1/registry/projects", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return code


PROJECT = {
    "name": "Metro riders",
    "standard": "CDCER",
    "methodology": "PT",
    "methodology_version": "1",
    "project_type": "transport",
    "credit_type": "avoidance",
    "nature_based": False,
    "country": "CN",
    "region": "CN-SC",
}


def _person(
    client: TestClient, name: str, role: Role, organisation_id: str | None, org: str | None
) -> Someone:
    web = TestClient(client.app)
    email = f"authz{next(_numbers)}@example.org"
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        cmd = users.SignUp(email=email, password=PASSWORD, display_name=name)
        user = users.sign_up(
            session=session, clock=FixedClock(NOW), cmd=cmd, role=role, organisation_id=organisation_id
        )
    csrf = _log_in(web, email)
    return Someone(name, role, org, web, key(client, role, organisation_id), user.id, csrf, email)


def _log_in(web: TestClient, email: str) -> str:
    """Sign ``web`` in; its CSRF token."""
    csrf = form_token(web, "/login")
    body = {"email": email, "password": PASSWORD, "csrf_token": csrf}
    assert web.post("/login", data=body, follow_redirects=False).status_code == 303
    return csrf


def _order(client: TestClient, listing: str) -> dict[str, Any]:
    quote = client.post("/api/v1/quotes", json={"kg": 3, "listing_id": listing})
    assert quote.status_code == 201, quote.text
    body = {"quote_id": quote.json()["id"], "beneficiary": {"display_name": "Guest"},
            "idempotency_key": f"authz-order-{next(_numbers)}"}  # fmt: skip
    created = client.post("/api/v1/orders", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings: Settings = fresh_database("sqlite", "authz", tmp_path_factory).model_copy(
        update={
            "signing_key_dir": tmp_path_factory.mktemp("keys"),
            "market_jobs_seconds": 0,
            "signups_per_hour": 1_000,
            "orders_per_minute": 1_000,
            "logins_per_quarter_hour": 1_000,
        }
    )
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        admin = key(client, Role.ADMIN)
        code, owner, org = registered_project(client, admin)
        org_b = organisation(client, admin)["id"]
        listed = client.post(
            "/api/v1/listings",
            headers=owner,
            json={
                "project_code": code,
                "vintage": 2025,
                "price_per_tonne_minor": 6_000,
                "available_kg": 4_000,
            },
        )
        assert listed.status_code == 201, listed.text
        listing = listed.json()["id"]
        people = {"anonymous": Someone("anonymous", None, None, TestClient(client.app))}
        people["anonymous"].csrf = form_token(people["anonymous"].web, "/login")
        for role in Role:
            for side, org_id in (("A", org["id"]), ("B", org_b)):
                person_org = None if role in (Role.ADMIN, Role.MEMBER) else side
                name = role.value if side == "A" else f"{role.value}@B"
                people[name] = _person(client, name, role, org_id if person_org else None, person_org)
        unpaid = _order(client, listing)
        paid = _order(client, listing)
        paid_ref = paid["next_action"]["url"].rsplit("/", 1)[1]
        assert client.post(f"/api/v1/payments/sandbox/{paid_ref}", json={}).status_code == 200
        certificate = client.get(f"/api/v1/orders/{paid['id']}").json()["certificate_number"]
        assert certificate
        footprint = client.post(
            "/api/v1/footprints", json={"activities": [{"type": "meal", "diet": "vegan", "count": 1}]}
        ).json()["id"]
        serial = client.get("/api/v1/registry/holdings", headers=owner).json()[0]["serial"]
        organiser = people["organiser"]
        scene = f"authz-scene-{next(_numbers)}"
        body = {"name": "Forum", "slug": scene, "type": "conference", "csrf_token": organiser.csrf}
        assert organiser.web.post("/organiser/scenes", data=body, follow_redirects=False).status_code == 303
        member = people["member"]
        factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
        with unit_of_work(factory) as session:
            issued = users.create_user_key(
                session=session, clock=FixedClock(NOW), actor=Actor(member.user_id, Role.MEMBER), label="k"
            )
        with unit_of_work(factory) as session:
            carbon = _carbon_account(session, org["id"], people["integrator"], member)
        yield World(
            client=client,
            admin=admin,
            org_a=org["id"],
            project=code,
            listing=listing,
            order=unpaid["id"],
            payment_ref=unpaid["next_action"]["url"].rsplit("/", 1)[1],
            certificate=certificate,
            footprint=footprint,
            serial=serial,
            scene=scene,
            member_key=issued.id,
            people=people,
            **carbon,
        )


def _carbon_account(
    session: Session, partner_id: str, integrator: Someone, member: Someone
) -> dict[str, str]:
    """Partner A's carbon account holding 100 points, linked to member A; a benefit of partner A's;
    two consents of member A's for partner A."""
    clock = FixedClock(NOW)
    credited = intake.Credited(
        external_id="authz-trip", behaviour="public_transport", started_at=NOW, ended_at=NOW, measures={},
        grams=10_000, code=None, methodology="public_transport@1.0.0", parameters_sha256=None,
    )  # fmt: skip
    reference = "authz-rider"
    intake.keep(session=session, clock=clock, partner_id=partner_id, reference=reference, outcomes=[credited])
    partner = Actor(integrator.user_id, Role.INTEGRATOR, partner_id)
    code, _ = accounts.issue_link_code(session=session, clock=clock, actor=partner, reference=reference)
    account = accounts.confirm_link(session=session, clock=clock, user_id=member.user_id, code=code)
    offer = accounts.BenefitCreate(title="Coffee", points=10)
    benefit = accounts.publish_benefit(session=session, clock=clock, actor=partner, cmd=offer)
    consents = [
        accounts.grant_consent(session=session, clock=clock, user_id=member.user_id, partner_id=partner_id).id
        for _ in range(2)
    ]
    return {
        "carbon_reference": reference,
        "carbon_account": account.id,
        "benefit": benefit.id,
        "consent": consents[0],
        "withdrawable": consents[1],
    }


# --- one request per route ------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    url: str
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None


@dataclass(frozen=True)
class Case:
    """How to call a route (with valid-looking parameters), and for "owner" rules who owns the row:
    organisation A (any of its members of a listed role), or the A person of ``owner_role``."""

    call: Callable[[World], Call]
    owner_role: Role | None = None
    by_organisation: bool = False
    own_browser: bool = False  # signs in or out: a browser of its own, so the actor's stays as it is


PLAN = {"expected_attendees": "10", "expected_kg": "500", "reduction_plan": "Trains",
        "starts_on": "2026-11-20", "ends_on": "2026-11-21"}  # fmt: skip
REGISTRATIONS = b"reference,origin,distance_km,mode,nights,hotel_country\nR-1,PEK,,,1,\n"


def _units() -> dict[str, Any]:
    return {"project_code": "NOPE", "vintage": 2025, "quantity_kg": 1}


def _n() -> str:
    return f"authz-{next(_numbers)}"


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/openapi.json"): Case(lambda w: Call("/openapi.json")),
    ("GET", "/docs"): Case(lambda w: Call("/docs")),
    ("GET", "/docs/oauth2-redirect"): Case(lambda w: Call("/docs/oauth2-redirect")),
    ("GET", "/redoc"): Case(lambda w: Call("/redoc")),
    ("GET", "/healthz"): Case(lambda w: Call("/healthz")),
    ("GET", "/.well-known/neutralize-keys.json"): Case(lambda w: Call("/.well-known/neutralize-keys.json")),
    ("POST", "/api/v1/footprints"): Case(
        lambda w: Call(
            "/api/v1/footprints", json={"activities": [{"type": "meal", "diet": "vegan", "count": 1}]}
        )
    ),
    ("GET", "/api/v1/footprints/{footprint_id}"): Case(lambda w: Call(f"/api/v1/footprints/{w.footprint}")),
    ("POST", "/api/v1/footprints/batch"): Case(
        lambda w: Call(
            "/api/v1/footprints/batch",
            files={"file": ("a.jsonl", b'{"type": "meal", "diet": "vegan", "count": 1}\n')},
        )
    ),
    ("GET", "/api/v1/factors"): Case(lambda w: Call("/api/v1/factors?q=hotel")),
    ("GET", "/api/v1/registry/projects"): Case(lambda w: Call("/api/v1/registry/projects")),
    ("GET", "/api/v1/registry/projects/{code}"): Case(
        lambda w: Call(f"/api/v1/registry/projects/{w.project}")
    ),
    ("GET", "/api/v1/registry/serials/{serial}"): Case(
        lambda w: Call(f"/api/v1/registry/serials/{w.serial}")
    ),
    ("GET", "/api/v1/registry/home-serials"): Case(lambda w: Call("/api/v1/registry/home-serials?q=VCS-123")),
    ("GET", "/api/v1/registry/home-retirements/{retirement_id}"): Case(
        lambda w: Call("/api/v1/registry/home-retirements/hr_none")  # none yet: the door is what is tested
    ),
    ("GET", "/api/v1/registry/retirements"): Case(lambda w: Call("/api/v1/registry/retirements")),
    ("GET", "/api/v1/registry/exports/{kind}.{fmt}"): Case(
        lambda w: Call("/api/v1/registry/exports/projects.csv")
    ),
    ("POST", "/api/v1/registry/organisations"): Case(
        lambda w: Call("/api/v1/registry/organisations", json={"name": _n()})
    ),
    ("GET", "/api/v1/registry/organisations/{organisation_id}"): Case(
        lambda w: Call(f"/api/v1/registry/organisations/{w.org_a}"),
        owner_role=Role.PROJECT_OWNER,
        by_organisation=True,
    ),
    ("POST", "/api/v1/registry/projects"): Case(
        lambda w: Call(
            "/api/v1/registry/projects",
            json={**PROJECT, "code": _n().upper(), "owner_organisation_id": w.org_a},
        ),
        owner_role=Role.PROJECT_OWNER,
        by_organisation=True,
    ),
    ("POST", "/api/v1/registry/projects/{code}/transitions"): Case(
        lambda w: Call(
            f"/api/v1/registry/projects/{w.draft_project()}/transitions", json={"to_status": "nope"}
        )
    ),
    ("POST", "/api/v1/registry/verifications"): Case(
        lambda w: Call("/api/v1/registry/verifications", json={})
    ),
    ("GET", "/api/v1/registry/holdings"): Case(lambda w: Call("/api/v1/registry/holdings")),
    ("POST", "/api/v1/registry/issuances"): Case(lambda w: Call("/api/v1/registry/issuances", json={})),
    ("POST", "/api/v1/registry/transfers"): Case(
        lambda w: Call(
            "/api/v1/registry/transfers",
            json={"units": _units(), "to_account_id": "x", "idempotency_key": _n()},
        )
    ),
    ("POST", "/api/v1/registry/retirements"): Case(
        lambda w: Call(
            "/api/v1/registry/retirements",
            json={"units": _units(), "beneficiary": "B", "reason": "R", "idempotency_key": _n()},
        )
    ),
    ("POST", "/api/v1/registry/cancellations"): Case(
        lambda w: Call(
            "/api/v1/registry/cancellations", json={"units": _units(), "reason": "R", "idempotency_key": _n()}
        )
    ),
    ("POST", "/api/v1/registry/exports"): Case(
        lambda w: Call(
            "/api/v1/registry/exports",
            json={"units": _units(), "destination_registry": "V", "reference": "r", "idempotency_key": _n()},
        )
    ),
    ("POST", "/api/v1/registry/reservations"): Case(
        lambda w: Call(
            "/api/v1/registry/reservations",
            json={"units": _units(), "reservation": "r", "idempotency_key": _n()},
        )
    ),
    ("POST", "/api/v1/registry/reservations/release"): Case(
        lambda w: Call(
            "/api/v1/registry/reservations/release", json={"reservation": "none", "idempotency_key": _n()}
        )
    ),
    ("POST", "/api/v1/registry/reservations/post"): Case(
        lambda w: Call(
            "/api/v1/registry/reservations/post", json={"reservation": "none", "idempotency_key": _n()}
        )
    ),
    ("POST", "/api/v1/registry/buffer-reversals"): Case(
        lambda w: Call("/api/v1/registry/buffer-reversals", json={})
    ),
    ("GET", "/api/v1/registry/check"): Case(lambda w: Call("/api/v1/registry/check")),
    ("GET", "/api/v1/registry/audit"): Case(lambda w: Call("/api/v1/registry/audit")),
    ("POST", "/api/v1/registry/imports"): Case(
        lambda w: Call(
            "/api/v1/registry/imports?programme=VCS", files={"file": ("v.csv", b"not,an,export\n")}
        )
    ),
    ("POST", "/api/v1/registry/home-retirements"): Case(
        lambda w: Call("/api/v1/registry/home-retirements", json={})
    ),
    ("POST", "/api/v1/registry/shares"): Case(lambda w: Call("/api/v1/registry/shares", json={})),
    ("POST", "/api/v1/registry/home-holdings"): Case(
        lambda w: Call("/api/v1/registry/home-holdings", json={})
    ),
    ("GET", "/api/v1/registry/home-holdings"): Case(lambda w: Call("/api/v1/registry/home-holdings")),
    ("GET", "/api/v1/listings"): Case(lambda w: Call("/api/v1/listings")),
    ("POST", "/api/v1/listings"): Case(lambda w: Call("/api/v1/listings", json={})),
    ("POST", "/api/v1/quotes"): Case(
        lambda w: Call("/api/v1/quotes", json={"kg": 1, "listing_id": w.listing})
    ),
    ("POST", "/api/v1/orders"): Case(lambda w: Call("/api/v1/orders", json={"quote_id": "none"})),
    ("GET", "/api/v1/orders/{order_id}"): Case(lambda w: Call(f"/api/v1/orders/{w.order}")),
    ("POST", "/api/v1/orders/{order_id}/cancel"): Case(lambda w: Call(f"/api/v1/orders/{w.order}/cancel")),
    ("POST", "/api/v1/payments/webhooks/{gateway}"): Case(
        lambda w: Call("/api/v1/payments/webhooks/sandbox", json={"unsigned": True})
    ),
    ("POST", "/api/v1/payments/sandbox/{provider_ref}"): Case(
        lambda w: Call(f"/api/v1/payments/sandbox/{w.payment_ref}", json={"outcome": "failed"})
    ),
    ("GET", "/api/v1/certificates/{number}"): Case(lambda w: Call(f"/api/v1/certificates/{w.certificate}")),
    ("GET", "/api/v1/certificates/{number}/pdf"): Case(
        lambda w: Call(f"/api/v1/certificates/{w.certificate}/pdf")
    ),
    ("GET", "/api/v1/certificates/{number}/card.png"): Case(
        lambda w: Call(f"/api/v1/certificates/{w.certificate}/card.png")
    ),
    ("GET", "/api/v1/certificates/{number}/verification"): Case(
        lambda w: Call(f"/api/v1/certificates/{w.certificate}/verification")
    ),
    ("GET", "/api/v1/market/projects/{code}/sales"): Case(
        lambda w: Call(f"/api/v1/market/projects/{w.project}/sales")
    ),
    ("GET", "/api/v1/market/settlements"): Case(lambda w: Call("/api/v1/market/settlements")),
    ("POST", "/api/v1/market/payouts"): Case(lambda w: Call("/api/v1/market/payouts", json={})),
    ("GET", "/api/v1/market/retire-pending"): Case(lambda w: Call("/api/v1/market/retire-pending")),
    ("GET", "/api/v1/market/reconciliation"): Case(lambda w: Call("/api/v1/market/reconciliation")),
    ("GET", "/api/v1/market/alerts"): Case(lambda w: Call("/api/v1/market/alerts")),
    # pages
    ("GET", "/"): Case(lambda w: Call("/")),
    ("POST", "/"): Case(lambda w: Call("/", data={"diet": "vegan", "meals": "2"})),
    ("GET", "/offset"): Case(lambda w: Call(f"/offset?kg_co2e=3&listing_id={w.listing}")),
    ("POST", "/offset"): Case(
        lambda w: Call("/offset", data={"quote_id": "none", "idempotency_key": _n(), "display_name": "G"})
    ),
    ("GET", "/orders/{order_id}"): Case(lambda w: Call(f"/orders/{w.order}")),
    ("GET", "/sandbox/pay/{provider_ref}"): Case(lambda w: Call(f"/sandbox/pay/{w.payment_ref}")),
    ("POST", "/sandbox/pay/{provider_ref}"): Case(
        lambda w: Call(f"/sandbox/pay/{w.payment_ref}", data={"outcome": "failed"})
    ),
    ("GET", "/certificates/{number}"): Case(lambda w: Call(f"/certificates/{w.certificate}")),
    ("GET", "/verify/{number}"): Case(lambda w: Call(f"/verify/{w.certificate}")),
    ("GET", "/signup"): Case(lambda w: Call("/signup")),
    ("POST", "/signup"): Case(
        lambda w: Call("/signup", data={"email": "not an address", "password": "x", "display_name": "x"})
    ),
    ("GET", "/login"): Case(lambda w: Call("/login")),
    ("POST", "/login"): Case(
        lambda w: Call("/login", data={"email": w.people["member@B"].email, "password": PASSWORD}),
        own_browser=True,
    ),
    ("POST", "/logout"): Case(lambda w: Call("/logout", data={}), own_browser=True),
    ("GET", "/account"): Case(lambda w: Call("/account")),
    ("POST", "/account/keys"): Case(lambda w: Call("/account/keys", data={"label": "matrix"})),
    ("POST", "/account/keys/{key_id}/revoke"): Case(
        lambda w: Call(f"/account/keys/{w.member_key}/revoke", data={}), owner_role=Role.MEMBER
    ),
    ("GET", "/password-reset"): Case(lambda w: Call("/password-reset")),
    ("POST", "/password-reset"): Case(
        lambda w: Call("/password-reset", data={"email": "nobody@example.org"})
    ),
    ("GET", "/password-reset/{token}"): Case(lambda w: Call("/password-reset/usr_x.1.mac")),
    ("POST", "/password-reset/{token}"): Case(
        lambda w: Call("/password-reset/usr_x.1.mac", data={"password": "x"})
    ),
    ("GET", "/admin"): Case(lambda w: Call("/admin")),
    ("POST", "/admin/login"): Case(
        lambda w: Call("/admin/login", data={"api_key": w.admin["Authorization"][7:]}), own_browser=True
    ),
    ("POST", "/admin/logout"): Case(lambda w: Call("/admin/logout", data={})),
    ("GET", "/s/{slug}"): Case(lambda w: Call(f"/s/{w.scene}")),
    ("POST", "/s/{slug}"): Case(
        lambda w: Call(f"/s/{w.scene}", data={"travel_mode": "rail", "distance_km": "100"})
    ),
    ("GET", "/organiser"): Case(lambda w: Call("/organiser")),
    ("POST", "/organiser/scenes"): Case(
        lambda w: Call("/organiser/scenes", data={"slug": _n(), "type": "hotel", "name": "Hotel"})
    ),
    ("GET", "/organiser/scenes/{slug}"): Case(
        lambda w: Call(f"/organiser/scenes/{w.scene}"), owner_role=Role.ORGANISER
    ),
    ("GET", "/organiser/scenes/{slug}/participants.csv"): Case(
        lambda w: Call(f"/organiser/scenes/{w.scene}/participants.csv"), owner_role=Role.ORGANISER
    ),
    ("GET", "/organiser/scenes/{slug}/poster.{kind}"): Case(
        lambda w: Call(f"/organiser/scenes/{w.scene}/poster.svg"), owner_role=Role.ORGANISER
    ),
    ("GET", "/api/v1/accounts/{reference}"): Case(
        lambda w: Call(f"/api/v1/accounts/{w.carbon_reference}"),
        owner_role=Role.INTEGRATOR,
        by_organisation=True,
    ),
    ("GET", "/api/v1/accounts/{reference}/history"): Case(
        lambda w: Call(f"/api/v1/accounts/{w.carbon_reference}/history"),
        owner_role=Role.INTEGRATOR,
        by_organisation=True,
    ),
    ("POST", "/api/v1/accounts/{reference}/link-codes"): Case(
        lambda w: Call(f"/api/v1/accounts/{w.carbon_reference}/link-codes", json={}),
        owner_role=Role.INTEGRATOR,
        by_organisation=True,
    ),
    ("POST", "/api/v1/accounts/{reference}/redemptions"): Case(
        lambda w: Call(
            f"/api/v1/accounts/{w.carbon_reference}/redemptions",
            json={"benefit_id": w.benefit, "idempotency_key": "authz-api-redemption"},
        ),
        owner_role=Role.INTEGRATOR,
        by_organisation=True,
    ),
    ("POST", "/api/v1/accounts/records"): Case(
        lambda w: Call("/api/v1/accounts/records", json={"records": []})
    ),
    ("POST", "/api/v1/accounts/records/files"): Case(
        lambda w: Call(
            "/api/v1/accounts/records/files",
            files={"file": ("records.csv", b"account_ref,external_id\n", "text/csv")},
        )
    ),
    ("GET", "/api/v1/benefits"): Case(lambda w: Call("/api/v1/benefits")),
    ("POST", "/api/v1/benefits"): Case(lambda w: Call("/api/v1/benefits", json={"title": _n(), "points": 5})),
    ("GET", "/api/v1/levels/{consent_id}"): Case(
        lambda w: Call(f"/api/v1/levels/{w.consent}"), owner_role=Role.INTEGRATOR, by_organisation=True
    ),
    ("POST", "/carbon/link"): Case(lambda w: Call("/carbon/link", data={"code": "NOPE2345"})),
    ("POST", "/carbon/redeem"): Case(
        lambda w: Call(
            "/carbon/redeem",
            data={
                "account_id": w.carbon_account,
                "benefit_id": w.benefit,
                "idempotency_key": "authz-page-redeem",
            },
        ),
        owner_role=Role.MEMBER,
    ),
    ("POST", "/carbon/consents"): Case(lambda w: Call("/carbon/consents", data={"partner_id": w.org_a})),
    ("POST", "/carbon/consents/{consent_id}/withdraw"): Case(
        lambda w: Call(f"/carbon/consents/{w.withdrawable}/withdraw", data={}), owner_role=Role.MEMBER
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/plan"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/plan",
            data={
                "expected_attendees": "10",
                "expected_kg": "500",
                "reduction_plan": "Trains",
                "starts_on": "2026-11-20",
                "ends_on": "2026-11-21",
            },
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/measures"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/measures",
            data={"description": "Reusable cups", "evidence": "x"},
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/registrations"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/registrations",
            data={},
            files={"registration_list": ("list.csv", REGISTRATIONS, "text/csv")},
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/items"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/items",
            data={"kind": "electricity", "qualifier": "CN-SC", "quantity": "100"},
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/offsets"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/offsets",
            data={"listing_id": w.listing, "kg": "1", "idempotency_key": "authz-event-offset"},
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/allowances"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/allowances", data={"reference": _n(), "tonnes": "1"}
        ),
        owner_role=Role.ORGANISER,
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/evaluation"): Case(
        lambda w: Call(
            f"/organiser/scenes/{w.scene}/neutrality/evaluation",
            data={"kind": "self", "evaluator": "Us", "reference": "report"},
        ),
        owner_role=Role.ORGANISER,
    ),
    ("GET", "/leaderboards"): Case(lambda w: Call("/leaderboards")),
    ("GET", "/leaderboards/{slug}"): Case(lambda w: Call(f"/leaderboards/{w.scene}")),
    ("GET", "/registry"): Case(lambda w: Call("/registry")),
    ("GET", "/registry/projects/{code}"): Case(lambda w: Call(f"/registry/projects/{w.project}")),
    ("GET", "/registry/serials"): Case(lambda w: Call(f"/registry/serials?q={w.serial}")),
}


# A route without a Case of its own is called with its path's parameters filled from the world (an
# empty form for a POST): a new page under /organiser/scenes/{slug}/ needs only its line in RULES.
DEFAULT_PARAMETERS: dict[str, Callable[[World], str]] = {
    "slug": lambda w: w.scene,
    "code": lambda w: w.project,
    "order_id": lambda w: w.order,
    "number": lambda w: w.certificate,
    "footprint_id": lambda w: w.footprint,
    "provider_ref": lambda w: w.payment_ref,
}
SCENE_PAGES = "/organiser/scenes/{slug}/"


def case_for(method: str, path: str) -> Case | None:
    """The route's Case, or the default one when every parameter of its path has a default value."""
    if (method, path) in CASES:
        return CASES[(method, path)]
    names = re.findall(r"{(\w+)}", path)
    if any(name not in DEFAULT_PARAMETERS for name in names):
        return None
    rule = RULES[(method, path)]
    if rule.access is Access.OWNER and not path.startswith(SCENE_PAGES):
        return None  # whose row it is cannot be guessed

    def call(w: World) -> Call:
        url = path
        for name in names:
            url = url.replace(f"{{{name}}}", DEFAULT_PARAMETERS[name](w))
        return Call(url, data={} if method == "POST" else None)

    return Case(call, owner_role=Role.ORGANISER if rule.access is Access.OWNER else None)


# --- the rule table covers the app exactly -----------------------------------------------------------


def test_every_route_of_the_app_has_a_rule_and_every_rule_a_route(world: World) -> None:
    routes = app_routes(world.client.app)
    missing = sorted(routes - RULES.keys())
    stale = sorted(RULES.keys() - routes)
    assert not missing, (
        "no authorisation rule for: "
        + ", ".join(f"{m} {p}" for m, p in missing)
        + (" — add a line to RULES in src/neutralize/api/authorisation.py (and to docs/access.md)")
    )
    assert not stale, "rules for routes that no longer exist: " + ", ".join(f"{m} {p}" for m, p in stale)


def test_every_rule_has_a_case_in_the_matrix() -> None:
    for (method, path), rule in RULES.items():
        case = case_for(method, path)
        assert case is not None, f"add a Case for {method} {path} to CASES in tests/api/test_authorisation.py"
        assert (case.owner_role is not None) == (rule.access is Access.OWNER), f"{method} {path}"


def test_the_api_refuses_a_route_without_a_rule_at_the_door(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(RULES, ("GET", "/api/v1/listings"))
    response = world.client.get("/api/v1/listings", headers=world.admin)
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


# --- the matrix ------------------------------------------------------------------------------------------

ACTORS = ["anonymous", *(role.value for role in Role)]


def _cells() -> Iterator[Any]:
    for method, path in sorted(RULES, key=lambda route: (route[1], route[0])):
        case = case_for(method, path)
        if case is None:  # test_every_rule_has_a_case_in_the_matrix names it
            continue
        others = [f"{case.owner_role.value}@B"] if case.owner_role else []
        for actor in [*ACTORS, *others]:
            yield pytest.param(method, path, actor, id=f"{method} {path} | {actor}")


def allowed(rule: Rule, case: Case, someone: Someone) -> bool:
    """What the rule promises ``someone`` (an oracle written apart from the code it checks)."""
    if rule.access in (Access.PUBLIC, Access.LINK):
        return True
    if someone.role is None or (rule.organisation and someone.organisation is None):
        return False
    if rule.access is Access.SIGNED_IN:
        return True
    if rule.access is Access.ROLES:
        return someone.role in rule.roles
    if someone.role in rule.overseers:
        return True
    if someone.role not in rule.roles:
        return False
    if case.by_organisation:
        return someone.organisation == "A"
    return case.owner_role is not None and someone.name == case.owner_role.value


def refused(status: int, location: str, rule: Rule) -> bool:
    if status in (401, 403) or (300 <= status < 400 and location.endswith("/login")):
        return True
    return status == 404 and rule.access is Access.OWNER  # not yours answers like nothing there


@pytest.mark.parametrize(("method", "path", "actor"), list(_cells()))
def test_each_actor_gets_what_the_rule_says(world: World, method: str, path: str, actor: str) -> None:
    rule, case = RULES[(method, path)], case_for(method, path)
    assert case is not None
    someone = world.people[actor]
    if case.own_browser:
        web = TestClient(world.client.app)
        csrf = _log_in(web, someone.email) if someone.email else form_token(web, "/login")
        someone = replace(someone, web=web, csrf=csrf)
    call = case.call(world)
    api = path.startswith("/api/") or path in ("/healthz", "/.well-known/neutralize-keys.json")
    headers = someone.headers if api else {}
    data = call.data
    if data is not None:
        data = {**data, "csrf_token": someone.csrf}
    response = someone.web.request(
        method, call.url, json=call.json, data=data, files=call.files, headers=headers, follow_redirects=False
    )
    assert response.status_code < 500, response.text[:500]
    got = not refused(response.status_code, response.headers.get("location", ""), rule)
    want = allowed(rule, case, someone)
    assert got == want, (
        f"{actor} {'should' if want else 'should not'} get past the rule {rule.access}: "
        f"{response.status_code} {response.text[:300]}"
    )
    if actor.endswith("@B") and method == "GET":  # reading what is another's: as if it did not exist
        assert response.status_code == 404, response.text[:300]


# --- what a rule's line cannot say alone ------------------------------------------------------------------


def test_a_draft_project_is_its_owners_and_admins_only(world: World) -> None:
    # given a draft of organisation A (registered projects are public: the matrix shows them)
    code = world.draft_project()
    people = world.people
    # then the API shows it to organisation A and admins, and to anyone else it does not exist
    for name, status in (("anonymous", 404), ("member", 404), ("project_owner@B", 404),
                         ("project_owner", 200), ("verifier", 200), ("admin", 200)):  # fmt: skip
        response = world.client.get(f"/api/v1/registry/projects/{code}", headers=people[name].headers)
        assert response.status_code == status, (name, response.text)
        if status == 404:
            assert response.json()["code"] == "not_found"
    # and so does its page
    for name, status in (
        ("anonymous", 404),
        ("project_owner@B", 404),
        ("project_owner", 200),
        ("admin", 200),
    ):
        assert people[name].web.get(f"/registry/projects/{code}").status_code == status, name
    # and the public export of projects leaves it out; an admin's has it
    assert code not in world.client.get("/api/v1/registry/exports/projects.csv").text
    assert world.project in world.client.get("/api/v1/registry/exports/projects.csv").text
    assert code in world.client.get("/api/v1/registry/exports/projects.csv", headers=world.admin).text
