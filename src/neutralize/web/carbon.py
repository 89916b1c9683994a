"""Carbon-account pages: a person's accounts (balance, claim, points, level, badges, history),
linking another partner's account, benefits to redeem, consents; and a partner's overview."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from neutralize.access.domain import Actor, Role
from neutralize.access.users import UserPublic
from neutralize.accounts import service as accounts
from neutralize.api.deps import ClockDep, SessionDep
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.web.pages import page, problem_page
from neutralize.web.security import CsrfChecked, SignedIn

router = APIRouter(include_in_schema=False)
SEE_OTHER = 303
Id = Annotated[str, Form(max_length=40)]


def _carbon_page(
    request: Request,
    session: SessionDep,
    clock: Clock,
    who: tuple[Actor, UserPublic],
    *,
    problem: DomainError | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    user = who[1]
    mine = accounts.accounts_of_person(session=session, user_id=user.id)
    context: dict[str, Any] = {
        "accounts": [
            (accounts.view(a), accounts.history(session=session, account=a, limit=10)) for a in mine
        ],
        "reputation": accounts.reputation_of(session=session, clock=clock, accounts=mine) if mine else None,
        "benefits": accounts.benefits(session=session),
        "partners": accounts.partners_offering_benefits(session=session),
        "consents": accounts.consents_of(session=session, user_id=user.id),
        "redeem_key": secrets.token_urlsafe(18),  # a double submit redeems once
        "problem": problem,
        "notice": notice,
    }
    status = 200 if problem is None else 404 if problem.code is ErrorCode.NOT_FOUND else 422
    return page(request, "carbon.html", context, status)


@router.get("/carbon", response_class=HTMLResponse)
def carbon(request: Request, session: SessionDep, clock: ClockDep, who: SignedIn) -> Response:
    """The signed-in person's carbon accounts, level, badges and benefits."""
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    return _carbon_page(request, session, clock, who)


@router.post("/carbon/link", dependencies=[CsrfChecked])
def link(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    who: SignedIn,
    code: Annotated[str, Form(max_length=40)],
) -> Response:
    """Confirm the code a partner's app showed: that account joins the person's."""
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        accounts.confirm_link(session=session, clock=clock, user_id=who[1].id, code=code)
    except DomainError as error:
        session.rollback()
        return _carbon_page(request, session, clock, who, problem=error)
    return RedirectResponse("/carbon", status_code=SEE_OTHER)


@router.post("/carbon/redeem", dependencies=[CsrfChecked])
def redeem(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    who: SignedIn,
    account_id: Id,
    benefit_id: Id,
    idempotency_key: Annotated[str, Form(min_length=8, max_length=120)],
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        if account_id not in {a.id for a in accounts.accounts_of_person(session=session, user_id=who[1].id)}:
            raise NotFoundError(f"no carbon account {account_id!r} of yours")  # this page is the person's
        accounts.redeem(
            session=session,
            clock=clock,
            actor=who[0],
            account_id=account_id,
            benefit_id=benefit_id,
            idempotency_key=idempotency_key,
        )
    except DomainError as error:
        session.rollback()
        return _carbon_page(request, session, clock, who, problem=error)
    return RedirectResponse("/carbon", status_code=SEE_OTHER)


@router.post("/carbon/consents", dependencies=[CsrfChecked])
def grant(request: Request, session: SessionDep, clock: ClockDep, who: SignedIn, partner_id: Id) -> Response:
    """Let a partner read the person's level; the page shows the grant's id to hand to the partner."""
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    offering = {pid for pid, _name in accounts.partners_offering_benefits(session=session)}
    if partner_id not in offering:
        return problem_page(request, NotFoundError(f"no partner {partner_id!r}"), "/carbon")
    accounts.grant_consent(session=session, clock=clock, user_id=who[1].id, partner_id=partner_id)
    return RedirectResponse("/carbon", status_code=SEE_OTHER)


@router.post("/carbon/consents/{consent_id}/withdraw", dependencies=[CsrfChecked])
def withdraw(
    request: Request, consent_id: str, session: SessionDep, clock: ClockDep, who: SignedIn
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=SEE_OTHER)
    try:
        accounts.withdraw_consent(session=session, clock=clock, user_id=who[1].id, consent_id=consent_id)
    except DomainError as error:
        return problem_page(request, error, "/carbon")
    return RedirectResponse("/carbon", status_code=SEE_OTHER)


@router.get("/partner", response_class=HTMLResponse)
def partner(request: Request, session: SessionDep, who: SignedIn) -> Response:
    """A partner's overview: its accounts, grams credited, and the records the rules rejected."""
    if who is None or who[0].role is not Role.INTEGRATOR:  # the page of partners' integrator accounts
        return RedirectResponse("/login", status_code=SEE_OTHER)
    summary = accounts.partner_summary(session=session, actor=who[0])
    return page(request, "partner.html", {"summary": summary})
