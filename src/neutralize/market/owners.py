"""Whose an order is: a signed-in buyer's at once, or a guest's who claims it later through the order's
own link (its id, which only the buyer was shown, is the secret). Services never commit."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.market.models import Listing, Order, OrderOwner
from neutralize.registry.models import Project

MAX_LISTED = 500


class OwnedOrder(BaseModel):
    id: str
    status: str
    kg: int
    project_code: str
    vintage: int
    certificate_number: str | None
    created_at: datetime


def claim(*, session: Session, clock: Clock, order_id: str, user_id: str) -> None:
    """Keep the order (and its certificate) in ``user_id``'s account. Claiming one's own order again
    changes nothing; an order another account holds is ``already_claimed``."""
    if session.get(Order, order_id) is None:
        raise NotFoundError(f"no order {order_id!r}")
    owner = session.get(OrderOwner, order_id)
    if owner is None:
        try:
            with session.begin_nested():  # two claims at once: the second finds the first's row
                session.add(OrderOwner(order_id=order_id, user_id=user_id, claimed_at=clock.now()))
        except IntegrityError:
            owner = session.get(OrderOwner, order_id, populate_existing=True)
    if owner is not None and owner.user_id != user_id:
        raise DomainError(code=ErrorCode.ALREADY_CLAIMED, message="this order is kept in another account")


def owner_of(*, session: Session, order_id: str) -> str | None:
    """The user id of the account that holds the order, if any."""
    owner = session.get(OrderOwner, order_id)
    return owner.user_id if owner else None


def orders_of(*, session: Session, user_id: str) -> list[OwnedOrder]:
    """The orders an account holds, newest first."""
    rows = session.execute(
        select(Order, Project.code, Listing.vintage)
        .join(OrderOwner, OrderOwner.order_id == Order.id)
        .join(Project, Project.id == Order.project_id)
        .join(Listing, Listing.id == Order.listing_id)
        .where(OrderOwner.user_id == user_id)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(MAX_LISTED)
    ).all()
    return [
        OwnedOrder(
            id=order.id,
            status=order.status,
            kg=order.kg,
            project_code=code,
            vintage=vintage,
            certificate_number=order.certificate_number,
            created_at=order.created_at,
        )
        for order, code, vintage in rows
    ]
