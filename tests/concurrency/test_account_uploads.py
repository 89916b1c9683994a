"""Many uploads at once naming the same new accounts: every upload is kept, each reference opens one
account, and the accounts' running totals are the sum of their history (``accounts.check``).

On PostgreSQL an upload opens its new accounts in one statement that leaves a reference another
upload opened at the same moment to that upload, and reads it instead of failing. Each thread's
records fall on a day of their own, so that no overlap or daily cap refuses any of them. Thread
counts as in ``test_account_redemptions``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.ingest import records_frame
from neutralize.accounts.models import AccountEntry, CarbonAccount
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate
from tests.concurrency.test_account_redemptions import CLOCK, backend  # noqa: F401 (the fixture)
from tests.concurrency.test_market_races import Backend, race
from tests.unit.accounts.helpers import record

RIDERS = 5
METRO_G = 467  # 10 km at 46.7 g per passenger-km


def trips(thread: int) -> list[dict[str, object]]:
    """One 10 km metro trip for each rider, on the thread's own day."""
    start = datetime(2026, 3, 1, 8, tzinfo=UTC) + timedelta(days=thread)
    return [
        record(account_ref=f"rider-{r}", external_id=f"t{thread}-r{r}", distance_km=10,
               start_time=(start + timedelta(minutes=r)).isoformat(),
               end_time=(start + timedelta(minutes=r + 30)).isoformat())
        for r in range(RIDERS)
    ]  # fmt: skip


def _metro_partner(factory: sessionmaker[Session]) -> Actor:
    """A transit partner's integrator key, as the actor of its uploads."""
    with unit_of_work(factory) as session:
        made = registry.create_organisation(
            session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name="Metro")
        )
    return Actor(id="key-metro", role=Role.INTEGRATOR, organisation_id=made.id)


def test_uploads_at_once_open_each_account_once_and_keep_every_record(backend: Backend) -> None:  # noqa: F811
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    metro = _metro_partner(factory)
    credited: list[int] = []

    def upload(thread: int, factory_of_thread: object) -> None:
        with unit_of_work(factory_of_thread) as session:  # type: ignore[arg-type]
            report = intake.ingest(
                session=session, clock=CLOCK, actor=metro, raw=records_frame(trips(thread))
            )
        credited.append(report.credited)

    try:
        assert race(backend, upload) == []
        assert credited == [RIDERS] * backend.threads
        with unit_of_work(factory) as session:
            opened = session.execute(
                select(CarbonAccount.reference, CarbonAccount.credited_g).order_by(CarbonAccount.reference)
            ).all()
            assert opened == [(f"rider-{r}", METRO_G * backend.threads) for r in range(RIDERS)]
            kept = session.scalar(select(func.count()).select_from(AccountEntry))
            assert kept == RIDERS * backend.threads
            assert accounts.check(session=session) == []
    finally:
        engine.dispose()


def test_the_same_trip_sent_at_once_is_credited_once(backend: Backend) -> None:  # noqa: F811
    """Every thread sends rider-0's one trip under an id of its own (a partner's retry after a lost
    answer, say): one upload credits it, every other finds it credited and refuses the overlap."""
    engine = make_engine(backend.settings)
    factory = make_session_factory(engine)
    metro = _metro_partner(factory)
    credited: list[int] = []

    def upload(thread: int, factory_of_thread: object) -> None:
        trip = {**trips(0)[0], "external_id": f"resent-{thread}"}
        with unit_of_work(factory_of_thread) as session:  # type: ignore[arg-type]
            credited.append(
                intake.ingest(session=session, clock=CLOCK, actor=metro, raw=records_frame([trip])).credited
            )

    try:
        assert race(backend, upload) == []
        assert sorted(credited) == [0] * (backend.threads - 1) + [1]
        with unit_of_work(factory) as session:
            assert session.scalar(select(func.sum(CarbonAccount.credited_g))) == METRO_G
            codes = session.scalars(select(AccountEntry.code).where(AccountEntry.grams == 0)).all()
            assert codes == ["overlapping_behaviour"] * (backend.threads - 1)
            assert accounts.check(session=session) == []
    finally:
        engine.dispose()
