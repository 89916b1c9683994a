"""``neutralize market`` (listings, orders, reconciliation, settlements) and ``neutralize verify``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from neutralize.certificates import service as certificates
from neutralize.cli.common import (
    CHECK_FAILED,
    acting,
    err,
    fail,
    out,
    print_model,
    read_json,
    read_model,
    session_scope,
)
from neutralize.core.clock import SystemClock
from neutralize.core.config import get_settings
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import KeyRing
from neutralize.market import service
from neutralize.market.schemas import ListingCreate, OrderCreate, PayoutCreate, QuoteCreate
from neutralize.scenes import service as scenes

market_app = typer.Typer(help="Listings, orders, payments, settlements.", no_args_is_help=True)
policy_app = typer.Typer(help="The quality policy: what is offered by default.", no_args_is_help=True)
market_app.add_typer(policy_app, name="policy")

ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="the acting key (default: $NEUTRALIZE_API_KEY)")
]
Body = Annotated[str, typer.Argument(help="the command as JSON: a file, or - for stdin")]
CLOCK = SystemClock()


def _keys() -> KeyRing:
    return KeyRing.from_settings(get_settings(), clock=CLOCK)


@market_app.command("list")
def list_credits(body: Body, api_key: ApiKey = None) -> None:
    """Offer credits: {"project_code", "vintage", "price_per_tonne_minor", "currency", "available_kg"}."""
    with session_scope() as session:
        cmd = read_model(body, ListingCreate)
        print_model(
            service.create_listing(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@market_app.command("listings")
def listings(all_: Annotated[bool, typer.Option("--all", help="include inactive listings")] = False) -> None:
    """Listings with their labels and the quality policy's verdict."""
    with session_scope() as session:
        print_model(service.list_listings(session=session, include_inactive=all_))


@market_app.command("quote")
def quote(body: Body) -> None:
    """Price a purchase: {"kg": 340} or {"kg_co2e": "339.2"} or {"footprint_id": ...}."""
    with session_scope() as session:
        cmd = read_model(body, QuoteCreate)
        print_model(service.create_quote(session=session, clock=CLOCK, settings=get_settings(), cmd=cmd))


@market_app.command("order")
def order(body: Body) -> None:
    """Order a quote: {"quote_id", "beneficiary": {"display_name", ...}, "idempotency_key"}."""
    with session_scope() as session:
        cmd = read_model(body, OrderCreate)
        print_model(service.create_order(session=session, clock=CLOCK, settings=get_settings(), cmd=cmd))


@market_app.command("show")
def show(order_id: str) -> None:
    """An order with its price split, status history and certificate."""
    with session_scope() as session:
        print_model(service.order_public(session=session, order_id=order_id))


@market_app.command("confirm-payment")
def confirm_payment(
    order_id: str,
    reference: Annotated[str, typer.Option(help="the bank transfer or invoice reference")],
    api_key: ApiKey = None,
) -> None:
    """An operator confirms an offline payment (bank transfer, invoice); the order is then completed."""
    settings = get_settings()
    with session_scope() as session:
        effect = service.confirm_offline_payment(
            session=session,
            clock=CLOCK,
            settings=settings,
            actor=acting(session, api_key),
            order_id=order_id,
            reference=reference,
        )
    out.print(effect)
    with session_scope() as session:
        print_model(
            service.fulfil(session=session, clock=CLOCK, settings=settings, keys=_keys(), order_id=order_id)
        )


@market_app.command("expire")
def expire() -> None:
    """Void reservations whose time ran out (run it every minute or so)."""
    with session_scope() as session:
        expired = service.expire(session=session, clock=CLOCK)
    out.print(f"{len(expired)} reservations voided")


@market_app.command("reconcile")
def reconcile() -> None:
    """Finish what a crash or restart left: void stale reservations, complete every paid order,
    allocate waiting shares to recorded home retirements; then prove that every paid order ended
    retired, allocated or refunded and that money balances. Exit 1 on any problem."""
    settings, keys = get_settings(), _keys()
    with session_scope() as session:
        expired = service.expire(session=session, clock=CLOCK)
        paid = service.paid_order_ids(session=session)
    fulfilled = []
    for order_id in paid:  # one unit of work each: one bad order does not hold up the others
        try:
            with session_scope() as session:
                service.fulfil(session=session, clock=CLOCK, settings=settings, keys=keys, order_id=order_id)
                scenes.record_offsets(session=session, order_ids=[order_id])
            fulfilled.append(order_id)
        except typer.Exit:
            err.print(f"order {order_id} could not be completed (see above)")
    with session_scope() as session:
        allocated = service.allocate_pending(session=session, clock=CLOCK, settings=settings, keys=keys)
    with session_scope() as session:
        report = service.reconcile(session=session)
    report = report.model_copy(
        update={"expired": len(expired), "fulfilled": fulfilled, "allocated": allocated}
    )
    print_model(report)
    if not report.ok:
        raise typer.Exit(CHECK_FAILED)


@market_app.command("retire-pending")
def retire_pending() -> None:
    """Which whole tonnes to retire at each home registry, and with which beneficiary text, so that
    the shares sold so far can be allocated."""
    with session_scope() as session:
        print_model(service.retire_pending(session=session, clock=CLOCK, settings=get_settings()))


@market_app.command("allocate")
def allocate() -> None:
    """Allocate waiting shares to home retirements recorded since; their certificates are re-signed."""
    with session_scope() as session:
        allocated = service.allocate_pending(
            session=session, clock=CLOCK, settings=get_settings(), keys=_keys()
        )
    out.print(f"{len(allocated)} shares allocated")


@market_app.command("settlements")
def settlements() -> None:
    """What each project owner is owed and was paid; every account; whether the ledger balances."""
    with session_scope() as session:
        report = service.settlements(session=session)
    print_model(report)
    if not report.balanced:
        raise typer.Exit(CHECK_FAILED)


@market_app.command("payout")
def payout(body: Body, api_key: ApiKey = None) -> None:
    """Record money sent to an owner: {"organisation_id", "amount_minor", "currency", "reference"}."""
    with session_scope() as session:
        cmd = read_model(body, PayoutCreate)
        print_model(service.payout(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd))


@market_app.command("refund")
def refund(
    order_id: str,
    reason: Annotated[str, typer.Option(help="why, shown to the buyer")],
    api_key: ApiKey = None,
) -> None:
    """Refund a paid order that cannot be completed."""
    with session_scope() as session:
        print_model(
            service.refund(
                session=session,
                clock=CLOCK,
                settings=get_settings(),
                actor=acting(session, api_key),
                order_id=order_id,
                reason=reason,
            )
        )


@market_app.command("alerts")
def alerts() -> None:
    """What needs an operator: shares waiting too long for a home retirement, stuck orders."""
    with session_scope() as session:
        found = service.alerts(session=session, clock=CLOCK, settings=get_settings())
    for line in found:
        out.print(line)
    if found:
        raise typer.Exit(CHECK_FAILED)


@policy_app.command("show")
def policy_show() -> None:
    """The quality policy in force."""
    with session_scope() as session:
        out.print_json(json.dumps(service.current_policy(session=session), ensure_ascii=False))


@policy_app.command("set")
def policy_set(body: Body, api_key: ApiKey = None) -> None:
    """Put a new quality policy in force (admins)."""
    with session_scope() as session:
        policy = service.set_policy(
            session=session, clock=CLOCK, actor=acting(session, api_key), document=read_json(body)
        )
    out.print_json(json.dumps(policy, ensure_ascii=False))


def verify(
    path: Annotated[Path, typer.Argument(help="a certificate: its JSON, or its PDF")],
    keys: Annotated[
        Path | None,
        typer.Option(help="published keys (/.well-known/neutralize-keys.json); default: this platform's"),
    ] = None,
) -> None:
    """Check a certificate offline: its signature against the published keys. Exit 1 if it fails."""
    try:
        data = certificates.signed_bytes_of_file(path.read_bytes())
        published = json.loads(keys.read_text("utf-8")) if keys else _keys().published_keys()
        result = certificates.verify_offline(data, published)
    except OSError as error:
        fail(DomainError(code=ErrorCode.CERTIFICATE_UNREADABLE, message=f"cannot read: {error}"))
    except DomainError as error:
        fail(error)
    print_model(result)
    if not result.ok:
        raise typer.Exit(CHECK_FAILED)
