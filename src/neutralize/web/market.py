"""Pages from a footprint to a certificate: choose credits, order, pay (sandbox), certificate, verify."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from neutralize.access import users
from neutralize.api.deps import ClockDep, KeysDep, SessionDep, SettingsDep, session_factory
from neutralize.api.market import pay_in_sandbox
from neutralize.certificates import service as certificates
from neutralize.certificates.render import qr_svg
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market import owners, service
from neutralize.market.domain import Preference
from neutralize.market.gateways.base import EventKind
from neutralize.market.schemas import Beneficiary, OrderCreate, QuoteCreate
from neutralize.scenes import service as scenes
from neutralize.web.pages import page, problem_page
from neutralize.web.security import CsrfChecked, SignedIn, client_address

router = APIRouter(include_in_schema=False)
SEE_OTHER = 303


@router.get("/offset", response_class=HTMLResponse)
def offset(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    kg_co2e: Annotated[str, Query(max_length=30)] = "",
    footprint_id: Annotated[str | None, Query(max_length=40)] = None,
    participation: Annotated[str | None, Query(max_length=40)] = None,
    listing_id: Annotated[str | None, Query(max_length=40)] = None,
    preference: Preference = Preference.CHEAPEST,
) -> HTMLResponse:
    """The credits on offer for a footprint (a stored one, or a total), with their labels, and the
    price split of the choice."""
    try:
        amount = {"footprint_id": footprint_id} if footprint_id else {"kg_co2e": Decimal(kg_co2e)}
        quote = service.create_quote(
            session=session,
            clock=clock,
            settings=settings,
            cmd=QuoteCreate(**amount, listing_id=listing_id or None, preference=preference),
        )
    except (InvalidOperation, ValueError):
        error = DomainError(code=ErrorCode.WRONG_TYPE, message="the footprint must be a number of kg CO2e")
        return problem_page(request, error, "/")
    except DomainError as error:
        return problem_page(request, error, "/")
    keep = {k: v for k, v in (("kg_co2e", kg_co2e), ("footprint_id", footprint_id)) if v}
    if participation:
        keep["participation"] = participation
    context = {
        "quote": quote,
        "listings": service.list_listings(session=session),
        "amount_query": urlencode(keep),
        "participation": participation,
        "preference": preference.value,
        "idempotency_key": secrets.token_urlsafe(18),  # a double submit returns the same order
    }
    return page(request, "offset.html", context)


@router.post("/offset", response_class=HTMLResponse, dependencies=[CsrfChecked])
def place_order(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    who: SignedIn,
    quote_id: Annotated[str, Form(max_length=40)],
    idempotency_key: Annotated[str, Form(max_length=120)],
    display_name: Annotated[str, Form(max_length=10_000)],
    reason: Annotated[str, Form(max_length=10_000)] = "Offsetting my footprint",
    participation: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        users.rate_limit(
            session=session,
            clock=clock,
            bucket=f"order:{client_address(request)}",
            limit=settings.orders_per_minute,
            window_seconds=60,
        )
        cmd = OrderCreate(
            quote_id=quote_id,
            beneficiary=Beneficiary(display_name=display_name, reason=reason),
            idempotency_key=idempotency_key,
        )
        order = service.create_order(session=session, clock=clock, settings=settings, cmd=cmd)
        if who is not None:  # a signed-in buyer keeps the order, and its certificate, in the account
            owners.claim(session=session, clock=clock, order_id=order.id, user_id=who[1].id)
        if participation:  # the guest came from a scene: its dashboard counts this offset
            scenes.link_order(
                session=session,
                participation_id=participation,
                order_id=order.id,
                beneficiary=order.beneficiary_name,
            )
    except ValidationError as invalid:
        first = invalid.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        error = DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"{field}: {first['msg']}")
        return problem_page(request, error, "javascript:history.back()")
    except DomainError as error:
        if error.code is not ErrorCode.RATE_LIMITED:
            session.rollback()  # a refusal keeps nothing of the attempt (but an attempt counts)
        return problem_page(request, error, "javascript:history.back()")
    return RedirectResponse(f"/orders/{order.id}", status_code=SEE_OTHER)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order_page(request: Request, order_id: str, session: SessionDep, who: SignedIn) -> HTMLResponse:
    """An order's own page: its link is what the buyer keeps (and what lets a guest claim it)."""
    try:
        order = service.order_public(session=session, order_id=order_id)
    except DomainError as error:
        return problem_page(request, error, "/")
    owner = owners.owner_of(session=session, order_id=order_id)
    context = {"order": order, "owner": owner, "me": who[1].id if who else None}
    return page(request, "order.html", context)


@router.post("/orders/{order_id}/claim", dependencies=[CsrfChecked])
def claim_order(
    request: Request, order_id: str, session: SessionDep, clock: ClockDep, who: SignedIn
) -> Response:
    """Keep a guest's order, and its certificate, in the signed-in account."""
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        owners.claim(session=session, clock=clock, order_id=order_id, user_id=who[1].id)
    except DomainError as error:
        return problem_page(request, error, f"/orders/{order_id}")
    return RedirectResponse(f"/orders/{order_id}", status_code=SEE_OTHER)


@router.get("/sandbox/pay/{provider_ref}", response_class=HTMLResponse)
def sandbox_page(request: Request, provider_ref: str, session: SessionDep) -> HTMLResponse:
    """The simulated provider's checkout page, clearly labelled: no money moves."""
    try:
        payment = service.payment_by_ref(session=session, gateway="sandbox", provider_ref=provider_ref)
    except DomainError as error:
        return problem_page(request, error, "/")
    return page(request, "sandbox_pay.html", {"payment": payment})


@router.post("/sandbox/pay/{provider_ref}", dependencies=[CsrfChecked])
def sandbox_pay(
    request: Request,
    provider_ref: str,
    clock: ClockDep,
    settings: SettingsDep,
    keys: KeysDep,
    outcome: Annotated[str, Form(max_length=20)] = "succeeded",
) -> Response:
    kind = EventKind.FAILED if outcome == "failed" else EventKind.SUCCEEDED
    try:
        order_id, _effects = pay_in_sandbox(
            session_factory(request), clock, settings, keys, provider_ref, kind
        )
    except DomainError as error:
        return problem_page(request, error, "/")
    return RedirectResponse(f"/orders/{order_id}", status_code=SEE_OTHER)


@router.get("/certificates/{number}", response_class=HTMLResponse)
def certificate_page(request: Request, number: str, session: SessionDep) -> HTMLResponse:
    try:
        signed = certificates.get(session=session, number=number)
    except DomainError as error:
        return problem_page(request, error, "/")
    document = signed["certificate"]
    qr = qr_svg(document["verify_url"]).decode("utf-8")
    scene = scenes.participation_of_order(session=session, order_id=document["order"])
    context = {"c": document, "signature": signed["signature"], "qr": qr, "scene": scene}
    return page(request, "certificate.html", context)


@router.get("/verify/{number}", response_class=HTMLResponse)
def verify_page(request: Request, number: str, session: SessionDep, keys: KeysDep) -> HTMLResponse:
    """What the QR code opens: the certificate checked live against the registry."""
    try:
        result = certificates.verify(session=session, keys=keys, number=number)
    except DomainError as error:
        return problem_page(request, error, "/")
    return page(request, "verify.html", {"v": result, "c": result.certificate})
