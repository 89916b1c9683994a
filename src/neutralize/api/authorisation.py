"""Who may call each route: one declared rule per method and path template, pages and API alike.

``RULES`` is the table (docs/access.md explains it). The JSON API enforces it at the door with
``authorise``, before the body is even validated: an anonymous caller or a key of the wrong role is
refused (401/403) whatever it sends. Ownership ("their order, their scene, their keys") depends on
the row, so the service that loads the row checks it; what is not the caller's answers
``NOT_FOUND``, like what does not exist, so that an identifier does not reveal that it is taken.
Pages check their rule in the route (a page sends a stranger to ``/login`` rather than answering
JSON); tests/api/test_authorisation.py proves every route of the app against its rule, role by role.

Adding a route means adding its line here: the test names any route without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.api.deps import SessionDep, get_actor
from neutralize.core.errors import DomainError, ErrorCode


class Access(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    LINK = "link"  # anyone holding the unguessable id in the path (80 random bits): a guest's handle
    SIGNED_IN = "signed_in"  # any session (pages) or API key (API), whatever its role
    ROLES = "roles"  # one of the named roles
    OWNER = "owner"  # the named roles on what is theirs; the overseers on anyone's


@dataclass(frozen=True)
class Rule:
    """The rule of one route, and why."""

    access: Access
    reason: str
    roles: frozenset[Role] = frozenset()
    overseers: frozenset[Role] = frozenset()
    organisation: bool = False  # the caller acts for its organisation, so it must belong to one

    def admits(self, actor: Actor | None) -> bool:
        """Whether ``actor`` may come in at all (ownership, for ``OWNER``, is the service's to check)."""
        if self.access in (Access.PUBLIC, Access.LINK):
            return True
        if actor is None or (self.organisation and actor.organisation_id is None):
            return False
        if self.access is Access.SIGNED_IN:
            return True
        return actor.role in self.roles | self.overseers


def public(reason: str) -> Rule:
    return Rule(Access.PUBLIC, reason)


def link(reason: str) -> Rule:
    return Rule(Access.LINK, reason)


def signed_in(reason: str, *, organisation: bool = False) -> Rule:
    return Rule(Access.SIGNED_IN, reason, organisation=organisation)


def roles(*allowed: Role, reason: str, organisation: bool = False) -> Rule:
    return Rule(Access.ROLES, reason, roles=frozenset(allowed), organisation=organisation)


def owner(*allowed: Role, reason: str, overseers: tuple[Role, ...] = (Role.ADMIN,)) -> Rule:
    return Rule(Access.OWNER, reason, roles=frozenset(allowed), overseers=frozenset(overseers))


EVERYONE = tuple(Role)
HOLDERS = (Role.ADMIN, Role.PROJECT_OWNER, Role.ORGANISER, Role.MEMBER, Role.INTEGRATOR)  # not verifiers

RULES: dict[tuple[str, str], Rule] = {
    # --- the API's description and the platform's published facts
    ("GET", "/openapi.json"): public("the API's description is public (DESIGN.md §6)"),
    ("GET", "/docs"): public("the API's documentation"),
    ("GET", "/docs/oauth2-redirect"): public("part of the documentation page"),
    ("GET", "/redoc"): public("the API's documentation"),
    ("GET", "/healthz"): public("liveness: says nothing but ok"),
    ("GET", "/.well-known/neutralize-keys.json"): public("anyone verifies signatures"),
    # --- footprints and factors: guests calculate without an account
    ("POST", "/api/v1/footprints"): public("guests calculate"),
    ("GET", "/api/v1/footprints/{footprint_id}"): link("the footprint's id is its guest's handle"),
    ("POST", "/api/v1/footprints/batch"): public("computes a file, keeps nothing"),
    ("GET", "/api/v1/factors"): public("the factor catalogue is published data"),
    # --- registry: public reads
    ("GET", "/api/v1/registry/projects"): public("the public explorer (drafts left out)"),
    ("GET", "/api/v1/registry/projects/{code}"): public("a draft is its owner's and admins' only"),
    ("GET", "/api/v1/registry/serials/{serial}"): public("where credits went (accounts hidden)"),
    ("GET", "/api/v1/registry/home-serials"): public("mirrored public registry data"),
    ("GET", "/api/v1/registry/projects/{code}/home-blocks"): public("mirrored public registry data"),
    ("GET", "/api/v1/registry/projects/{code}/home-retirements"): public("shares and their Merkle roots"),
    ("GET", "/api/v1/registry/home-retirements/{retirement_id}"): public("shares and their Merkle root"),
    ("GET", "/api/v1/registry/retirements"): public("retirements are public claims"),
    ("GET", "/api/v1/registry/exports/{kind}.{fmt}"): public(
        "projects (drafts left out) for anyone; units and transactions for admins only"
    ),
    # --- registry: organisations and projects
    ("POST", "/api/v1/registry/organisations"): roles(Role.ADMIN, reason="admins admit organisations"),
    ("GET", "/api/v1/registry/organisations/{organisation_id}"): owner(
        *EVERYONE, reason="members of the organisation read it"
    ),
    ("POST", "/api/v1/registry/projects"): owner(
        Role.PROJECT_OWNER, reason="a project owner registers projects of its own organisation"
    ),
    ("POST", "/api/v1/registry/projects/{code}/transitions"): roles(
        Role.ADMIN,
        Role.PROJECT_OWNER,
        Role.VERIFIER,
        reason="each step has its role: the owner submits its own, a verifier validates, an admin decides",
    ),
    ("POST", "/api/v1/registry/verifications"): roles(
        Role.VERIFIER, Role.ADMIN, reason="verifiers record verifications"
    ),
    # --- registry: credits (a holder moves its own organisation's credits only)
    ("GET", "/api/v1/registry/holdings"): signed_in(
        "the caller's own organisation's blocks", organisation=True
    ),
    ("POST", "/api/v1/registry/issuances"): roles(Role.ADMIN, reason="admins issue credits"),
    ("POST", "/api/v1/registry/transfers"): roles(*HOLDERS, reason="own credits", organisation=True),
    ("POST", "/api/v1/registry/retirements"): roles(*HOLDERS, reason="own credits", organisation=True),
    ("POST", "/api/v1/registry/cancellations"): roles(*HOLDERS, reason="own credits", organisation=True),
    ("POST", "/api/v1/registry/exports"): roles(*HOLDERS, reason="own credits", organisation=True),
    ("POST", "/api/v1/registry/reservations"): roles(*HOLDERS, reason="own credits", organisation=True),
    ("POST", "/api/v1/registry/reservations/release"): roles(
        *HOLDERS, reason="own reservations", organisation=True
    ),
    ("POST", "/api/v1/registry/reservations/post"): roles(
        *HOLDERS, reason="own reservations", organisation=True
    ),
    ("POST", "/api/v1/registry/buffer-reversals"): roles(Role.ADMIN, reason="admins replace invalid credits"),
    ("GET", "/api/v1/registry/check"): roles(Role.ADMIN, reason="whole-registry audit"),
    ("GET", "/api/v1/registry/audit"): roles(Role.ADMIN, reason="whole-registry audit"),
    # --- registry: mirrored credits (the platform's stock at home registries)
    ("POST", "/api/v1/registry/imports"): roles(Role.ADMIN, reason="admins import public exports"),
    ("POST", "/api/v1/registry/home-retirements"): roles(Role.ADMIN, reason="the platform's retirements"),
    ("POST", "/api/v1/registry/shares"): roles(Role.ADMIN, reason="the platform allocates shares"),
    ("POST", "/api/v1/registry/home-holdings"): roles(Role.ADMIN, reason="the platform's stock"),
    ("GET", "/api/v1/registry/home-holdings"): roles(Role.ADMIN, reason="the platform's stock"),
    # --- market
    ("GET", "/api/v1/listings"): public("credits on offer"),
    ("POST", "/api/v1/listings"): roles(
        Role.PROJECT_OWNER, Role.ADMIN, reason="an owner lists its own credits; admins the platform's stock"
    ),
    ("POST", "/api/v1/quotes"): public("guests get a price"),
    ("POST", "/api/v1/orders"): public("guests order without an account (rate limited)"),
    ("GET", "/api/v1/orders/{order_id}"): link("the order's id is its buyer's handle"),
    ("POST", "/api/v1/orders/{order_id}/cancel"): link("the order's id is its buyer's handle"),
    ("POST", "/api/v1/payments/webhooks/{gateway}"): public("the provider's signature authenticates it"),
    ("POST", "/api/v1/payments/sandbox/{provider_ref}"): link("the simulated checkout of one payment"),
    ("GET", "/api/v1/certificates/{number}"): public("certificates are public proofs"),
    ("GET", "/api/v1/certificates/{number}/pdf"): public("certificates are public proofs"),
    ("GET", "/api/v1/certificates/{number}/card.png"): public("certificates are public proofs"),
    ("GET", "/api/v1/certificates/{number}/verification"): public("anyone verifies a certificate"),
    ("GET", "/api/v1/market/projects/{code}/sales"): public("money passed on to a project is public"),
    ("GET", "/api/v1/market/settlements"): roles(
        Role.ADMIN, Role.PROJECT_OWNER, reason="a project owner sees its own organisation's only"
    ),
    ("POST", "/api/v1/market/payouts"): roles(Role.ADMIN, reason="operations"),
    # --- carbon accounts: a partner's own accounts, benefits, levels read with consent
    ("POST", "/api/v1/accounts/records"): roles(
        Role.INTEGRATOR, reason="a partner sends its own people's records", organisation=True
    ),
    ("POST", "/api/v1/accounts/records/files"): roles(
        Role.INTEGRATOR, reason="a partner sends its own people's records", organisation=True
    ),
    ("GET", "/api/v1/accounts/{reference}"): owner(
        Role.INTEGRATOR, reason="the partner's own accounts", overseers=()
    ),
    ("GET", "/api/v1/accounts/{reference}/history"): owner(
        Role.INTEGRATOR, reason="the partner's own accounts", overseers=()
    ),
    ("POST", "/api/v1/accounts/{reference}/link-codes"): owner(
        Role.INTEGRATOR, reason="the partner's own accounts", overseers=()
    ),
    ("POST", "/api/v1/accounts/{reference}/redemptions"): owner(
        Role.INTEGRATOR, reason="the partner redeems for its own account holder", overseers=()
    ),
    ("GET", "/api/v1/benefits"): public("offers are public"),
    ("POST", "/api/v1/benefits"): roles(
        Role.INTEGRATOR, Role.ADMIN, reason="a partner offers its own benefits", organisation=True
    ),
    ("GET", "/api/v1/levels/{consent_id}"): owner(
        Role.INTEGRATOR, reason="only the partner the person gave this consent to", overseers=()
    ),
    ("GET", "/api/v1/market/retire-pending"): roles(Role.ADMIN, reason="operations"),
    ("GET", "/api/v1/market/reconciliation"): roles(Role.ADMIN, reason="operations"),
    ("GET", "/api/v1/market/alerts"): roles(Role.ADMIN, reason="operations"),
    # --- pages: calculating, offsetting, certificates
    ("GET", "/"): public("the life footprint calculator"),
    ("POST", "/"): public("the life footprint calculator"),
    ("GET", "/offset"): public("guests choose credits"),
    ("POST", "/offset"): public("guests order (rate limited)"),
    ("GET", "/orders/{order_id}"): link("the order's id is its buyer's handle"),
    ("POST", "/orders/{order_id}/claim"): signed_in("a signed-in account keeps an order through its link"),
    ("GET", "/sandbox/pay/{provider_ref}"): link("the simulated checkout of one payment"),
    ("POST", "/sandbox/pay/{provider_ref}"): link("the simulated checkout of one payment"),
    ("GET", "/certificates/{number}"): public("certificates are public proofs"),
    ("GET", "/verify/{number}"): public("what a certificate's QR code opens"),
    # --- pages: accounts
    ("GET", "/signup"): public("anyone signs up"),
    ("POST", "/signup"): public("anyone signs up (rate limited)"),
    ("GET", "/login"): public("anyone signs in"),
    ("POST", "/login"): public("anyone signs in (rate limited)"),
    ("POST", "/logout"): public("ends the browser's own session, if any"),
    ("GET", "/account"): signed_in("the account's own page"),
    ("POST", "/account/keys"): signed_in("a key with the account's own role and organisation"),
    ("POST", "/account/keys/{key_id}/revoke"): owner(
        *EVERYONE, reason="the account's own keys only", overseers=()
    ),
    ("GET", "/password-reset"): public("anyone asks for a link (rate limited)"),
    ("POST", "/password-reset"): public("anyone asks for a link (rate limited)"),
    ("GET", "/password-reset/{token}"): link("the signed link from the e-mail"),
    ("POST", "/password-reset/{token}"): link("the signed link from the e-mail"),
    ("GET", "/admin"): roles(Role.ADMIN, reason="operations"),
    ("POST", "/admin/login"): public("an admin key signs in here"),
    ("POST", "/admin/logout"): public("ends the browser's own admin sign-in"),
    # --- pages: scenes and leaderboards
    ("GET", "/s/{slug}"): public("what a scene's QR code opens"),
    ("POST", "/s/{slug}"): public("guests take part"),
    ("GET", "/organiser"): roles(Role.ORGANISER, Role.ADMIN, reason="an organiser's own scenes"),
    ("POST", "/organiser/scenes"): roles(Role.ORGANISER, Role.ADMIN, reason="the scene is the caller's"),
    ("GET", "/organiser/scenes/{slug}"): owner(Role.ORGANISER, reason="the scene's organiser"),
    ("GET", "/organiser/scenes/{slug}/participants.csv"): owner(
        Role.ORGANISER, reason="the scene's organiser: the attendee list is theirs"
    ),
    ("GET", "/organiser/scenes/{slug}/poster.{kind}"): owner(Role.ORGANISER, reason="the scene's organiser"),
    ("GET", "/organiser/scenes/{slug}/report.pdf"): owner(Role.ORGANISER, reason="the scene's organiser"),
    ("GET", "/organiser/scenes/{slug}/neutrality"): owner(Role.ORGANISER, reason="the event's organiser"),
    ("POST", "/organiser/scenes/{slug}/neutrality/plan"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/measures"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/registrations"): owner(
        Role.ORGANISER, reason="the event's organiser: the attendee list is theirs"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/items"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/offsets"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/allowances"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("POST", "/organiser/scenes/{slug}/neutrality/evaluation"): owner(
        Role.ORGANISER, reason="the event's organiser"
    ),
    ("GET", "/s/{slug}/neutrality"): public("an event's neutrality steps and claim are public"),
    ("GET", "/leaderboards"): public("names masked unless a guest opted in"),
    ("GET", "/leaderboards/{slug}"): public("names masked unless a guest opted in"),
    # --- pages: carbon accounts
    ("GET", "/carbon"): signed_in("the person's own linked accounts"),
    ("POST", "/carbon/link"): signed_in("the code from a partner's app links that account to the caller"),
    ("POST", "/carbon/redeem"): owner(*EVERYONE, reason="the person's own linked accounts", overseers=()),
    ("POST", "/carbon/consents"): signed_in("the person's own level"),
    ("POST", "/carbon/consents/{consent_id}/withdraw"): owner(
        *EVERYONE, reason="the person's own consents", overseers=()
    ),
    ("GET", "/partner"): roles(Role.INTEGRATOR, reason="a partner's own accounts", organisation=True),
    # --- the public registry explorer
    ("GET", "/registry"): public("the public explorer (drafts left out)"),
    ("GET", "/registry/projects/{code}"): public("a draft is its owner's and admins' only"),
    ("GET", "/registry/serials"): public("where credits went"),
}


def authorise(request: Request, session: SessionDep) -> None:
    """Refuse at the door whoever the route's rule does not admit; a route without a rule admits
    no one (the test names it first). Public routes touch no database here: some (payments) open
    units of work of their own, and an open read would hold SQLite's lock against them."""
    route = request.scope.get("route")
    rule = RULES.get((request.method, getattr(route, "path", "")))
    if rule is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="this route has no authorisation rule")
    if rule.access in (Access.PUBLIC, Access.LINK):
        return
    actor = get_actor(request, session)
    if rule.admits(actor):
        return
    if actor is not None and rule.organisation and actor.organisation_id is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="this key belongs to no organisation")
    require(actor, *(rule.roles | rule.overseers))
