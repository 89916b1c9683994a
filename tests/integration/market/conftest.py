"""Factories for market tests: a seller with issued credits, listings, quotes, orders and signed
sandbox notifications, all through the real services on the test's session."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.signing import KeyRing
from neutralize.market import gateways, service
from neutralize.market.gateways.base import EventKind
from neutralize.market.gateways.sandbox import SandboxGateway
from neutralize.market.schemas import (
    Beneficiary,
    ListingCreate,
    ListingPublic,
    OrderCreate,
    OrderPublic,
    QuoteCreate,
    QuotePublic,
)
from neutralize.registry import mirror
from neutralize.registry.importers.records import Programme
from neutralize.registry.schemas import ProjectPublic
from tests.integration.registry.conftest import Org, Registry, verra_serial

DATA = Path(__file__).resolve().parents[2] / "data" / "registry"
SETTINGS = Settings(environment="test", public_url="https://neutralize.test")
KEY_B64 = base64.b64encode(bytes(range(32))).decode("ascii")
PRICE_PER_TONNE = 6_000  # 60.00 CNY


@dataclass
class Seller:
    org: Org
    project: ProjectPublic
    listing: ListingPublic


class Market:
    """A market on one session with its own clock (which tests move on) and key ring."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.clock = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
        self.registry = Registry(session)
        self.registry.clock = self.clock
        self.keys = KeyRing.from_key_b64(KEY_B64, clock=self.clock)
        self.settings = SETTINGS
        self._keys = itertools.count(1)

    @property
    def sandbox(self) -> SandboxGateway:
        gateway = gateways.get("sandbox", self.settings)
        assert isinstance(gateway, SandboxGateway)
        return gateway

    def native_seller(
        self,
        *,
        kg: int = 10_000,
        listed_kg: int | None = None,
        price: int = PRICE_PER_TONNE,
        buffer_permille: int = 0,
    ) -> Seller:
        org = self.registry.organisation()
        project = self.registry.project(
            org, nature_based=buffer_permille > 0, buffer_permille=buffer_permille
        )
        self.registry.issuance(project, kg=kg)
        listing = service.create_listing(
            session=self.session,
            clock=self.clock,
            actor=org.owner,
            cmd=ListingCreate(
                project_code=project.code,
                vintage=2025,
                price_per_tonne_minor=price,
                available_kg=listed_kg or kg - kg * buffer_permille // 1000,
            ),
        )
        return Seller(org, project, listing)

    def mirrored_listing(self, *, tonnes: int = 5, price: int = 9_000) -> ListingPublic:
        platform = self.registry.organisation("Platform stock holder")
        text = (DATA / "verra_export.csv").read_text(encoding="utf-8")
        mirror.import_export(
            session=self.session,
            clock=self.clock,
            actor=SYSTEM,
            programme=Programme.VERRA,
            data=text.encode(),
            filename="verra_export.csv",
        )
        mirror.record_holding(
            session=self.session,
            clock=self.clock,
            actor=SYSTEM,
            cmd=mirror.HomeHoldingCreate(
                project_code="VCS-1340",
                home_account="Platform account 1",
                serial=verra_serial(1340, 1, tonnes),
                vintage=2020,
                quantity_tonnes=tonnes,
            ),
        )
        return service.create_listing(
            session=self.session,
            clock=self.clock,
            actor=SYSTEM,
            cmd=ListingCreate(
                project_code="VCS-1340",
                vintage=2020,
                price_per_tonne_minor=price,
                available_kg=tonnes * 1000,
                seller_organisation_id=platform.id,
            ),
        )

    def record_home_retirement(
        self, tonnes: int, home_id: str = "HOME-1", vintage: int = 2020
    ) -> mirror.HomeRetirementPublic:
        holdings = mirror.holdings_at_home(session=self.session, project_code="VCS-1340")
        holding = next(h for h in holdings if h.vintage == vintage)
        return mirror.record_retirement(
            session=self.session,
            clock=self.clock,
            actor=SYSTEM,
            cmd=mirror.HomeRetirementCreate(
                holding_id=holding.id,
                project_code="VCS-1340",
                home_retirement_id=home_id,
                serial=verra_serial(1340, 1, tonnes),
                quantity_tonnes=tonnes,
                retired_on=date(2026, 11, 24),
                beneficiary_text="Neutralize platform buyers",
            ),
        )

    def quote(self, kg: int = 340, **fields: Any) -> QuotePublic:
        return service.create_quote(
            session=self.session, clock=self.clock, settings=self.settings, cmd=QuoteCreate(kg=kg, **fields)
        )

    def order(
        self, quote: QuotePublic, *, name: str = "Li Wei", key: str | None = None, **fields: Any
    ) -> OrderPublic:
        return service.create_order(
            session=self.session,
            clock=self.clock,
            settings=self.settings,
            cmd=OrderCreate(
                quote_id=quote.id,
                beneficiary=Beneficiary(display_name=name),
                idempotency_key=key or f"order-key-{next(self._keys):06d}",
                **fields,
            ),
        )

    def notify(
        self, order: OrderPublic, kind: EventKind = EventKind.SUCCEEDED, *, event_id: str | None = None
    ) -> str:
        """Deliver one signed sandbox notification for ``order``'s payment, as the webhook does."""
        ref = order.next_action["url"].rsplit("/", 1)[1]
        headers, body = self.sandbox.notification(
            provider_ref=ref,
            kind=kind,
            amount_minor=order.split.total_minor,
            currency=order.split.currency,
            signed_at=self.clock.now(),
            event_id=event_id,
        )
        event = self.sandbox.parse_webhook(headers=headers, body=body, now=self.clock.now())
        return service.apply_payment_event(
            session=self.session, clock=self.clock, settings=self.settings, gateway="sandbox", event=event
        )

    def fulfil(self, order: OrderPublic) -> OrderPublic:
        return service.fulfil(
            session=self.session, clock=self.clock, settings=self.settings, keys=self.keys, order_id=order.id
        )

    def buy(self, kg: int = 340, **quote_fields: Any) -> OrderPublic:
        """Quote, order, pay and fulfil: a completed purchase."""
        order = self.order(self.quote(kg, **quote_fields))
        assert self.notify(order) == "paid"
        return self.fulfil(order)


@pytest.fixture
def market(session: Session) -> Market:
    return Market(session)
