"""A buyer loop for the market crash test: quote, order, take the sandbox's signed payment
notification, each step its own unit of work, until killed. About half the orders are fulfilled by
the worker itself, in batches of a few once paid (a fulfilment queue), so a kill often falls between
a payment and its retirement; the other half are left paid, as when the process that took the
payment dies before it fulfils. ``neutralize market reconcile`` must finish both.

    python market_worker.py STATE_DIR SEED    (NEUTRALIZE_DATABASE_URL, NEUTRALIZE_SIGNING_KEY;
                                               the repository's root on PYTHONPATH)

``STATE_DIR/setup.json`` (written by the test) names the listing. Before each purchase the worker
appends its intent (key, kilograms, whether to fulfil) to ``intents.log``; after each step commits
it appends the step and what it returned to ``steps.log``. Each line is fsync'd before the worker
goes on. On start it repairs a line a kill cut short, then finishes every purchase the last run
left half-way with the same idempotency key and the same notification (a provider delivers a
notification again until it is acknowledged): a step that committed before the kill has no second
effect. It prints one line, ``ready``, once that is done.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from neutralize.core.clock import SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.signing import KeyRing
from neutralize.market import gateways, service
from neutralize.market.gateways.base import EventKind
from neutralize.market.gateways.sandbox import SandboxGateway
from neutralize.market.schemas import Beneficiary, OrderCreate, QuoteCreate
from tests.crash.load_worker import append_log, read_log, repair_log

CLOCK = SystemClock()
INTENTS, STEPS = "intents.log", "steps.log"
ORDER_KG = (1, 500)
FULFIL_SHARE = 0.5  # the rest are left paid for reconcile
FULFIL_BATCH = 3  # paid orders waiting in the fulfilment queue before it is drained


class Buyer:
    """The market's services, one unit of work per step, each step logged after its commit."""

    def __init__(self, settings: Settings, state: Path) -> None:
        self.settings = settings
        self.state = state
        self.setup = json.loads((state / "setup.json").read_text())
        self.factory: sessionmaker[Session] = make_session_factory(make_engine(settings))
        self.keys = KeyRing.from_settings(settings, clock=CLOCK)
        gateway = gateways.get("sandbox", settings)
        assert isinstance(gateway, SandboxGateway)
        self.sandbox = gateway

    def log(self, intent: dict[str, Any], step: str, **facts: Any) -> None:
        append_log(self.state / STEPS, {"key": intent["key"], "step": step, **facts})

    def quote(self, intent: dict[str, Any]) -> dict[str, Any]:
        cmd = QuoteCreate(kg=intent["kg"], listing_id=self.setup["listing_id"])
        with unit_of_work(self.factory) as session:
            quoted = service.create_quote(session=session, clock=CLOCK, settings=self.settings, cmd=cmd)
        facts = {"quote_id": quoted.id}
        self.log(intent, "quoted", **facts)
        return facts

    def order(self, intent: dict[str, Any], quote_id: str) -> dict[str, Any]:
        cmd = OrderCreate(
            quote_id=quote_id,
            beneficiary=Beneficiary(display_name=f"Buyer {intent['key']}"),
            idempotency_key=intent["key"],
        )
        with unit_of_work(self.factory) as session:
            ordered = service.create_order(session=session, clock=CLOCK, settings=self.settings, cmd=cmd)
        facts = {
            "order_id": ordered.id,
            "provider_ref": ordered.next_action["url"].rsplit("/", 1)[1],
            "total_minor": ordered.split.total_minor,
            "currency": ordered.split.currency,
        }
        self.log(intent, "ordered", **facts)
        return facts

    def pay(self, intent: dict[str, Any], ordered: dict[str, Any]) -> None:
        """Deliver the provider's signed notification, through the webhook's parser."""
        headers, body = self.sandbox.notification(
            provider_ref=ordered["provider_ref"],
            kind=EventKind.SUCCEEDED,
            amount_minor=ordered["total_minor"],
            currency=ordered["currency"],
            signed_at=CLOCK.now(),
            event_id=f"evt-{intent['key']}",
        )
        event = self.sandbox.parse_webhook(headers=headers, body=body, now=CLOCK.now())
        with unit_of_work(self.factory) as session:
            effect = service.apply_payment_event(
                session=session, clock=CLOCK, settings=self.settings, gateway="sandbox", event=event
            )
        self.log(intent, "paid", order_id=ordered["order_id"], effect=effect)

    def fulfil(self, intent: dict[str, Any], order_id: str) -> None:
        with unit_of_work(self.factory) as session:
            done = service.fulfil(
                session=session, clock=CLOCK, settings=self.settings, keys=self.keys, order_id=order_id
            )
        self.log(intent, "fulfilled", order_id=order_id, status=done.status, number=done.certificate_number)

    def carry_out(self, intent: dict[str, Any], done: dict[str, dict[str, Any]]) -> str:
        """The purchase's steps up to the payment not yet logged as done, in order; the order's id."""
        quoted = done.get("quoted") or self.quote(intent)
        ordered = done.get("ordered") or self.order(intent, quoted["quote_id"])
        if "paid" not in done:
            self.pay(intent, ordered)
        order_id: str = ordered["order_id"]
        return order_id


def main(state: Path, seed: int, replay_only: bool = False) -> None:
    buyer = Buyer(Settings(), state)
    for name in (INTENTS, STEPS):
        repair_log(state / name)
    intents = read_log(state / INTENTS)
    steps: dict[str, dict[str, dict[str, Any]]] = {}
    for step in read_log(state / STEPS):
        steps.setdefault(step["key"], {})[step["step"]] = step
    for intent in intents:
        done = steps.get(intent["key"], {})
        order_id = buyer.carry_out(intent, done)
        if intent["fulfil"] and "fulfilled" not in done:
            buyer.fulfil(intent, order_id)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if replay_only:  # the last start of a test: what was in flight is settled, nothing new begins
        return
    rng = random.Random(seed)
    queue: list[tuple[dict[str, Any], str]] = []
    for number in range(len(intents), sys.maxsize):
        intent = {
            "key": f"crash-order-{number:06d}",
            "kg": rng.randint(*ORDER_KG),
            "fulfil": rng.random() < FULFIL_SHARE,
        }
        append_log(state / INTENTS, intent)
        order_id = buyer.carry_out(intent, {})
        if intent["fulfil"]:
            queue.append((intent, order_id))
        if len(queue) >= FULFIL_BATCH:
            for queued, queued_order in queue:
                buyer.fulfil(queued, queued_order)
            queue.clear()


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), replay_only="--replay-only" in sys.argv[3:])
