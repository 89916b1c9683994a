"""Tamper evidence: history changed behind the services' back is found by ``journal.verify``,
which names the chain and the entry; and the database itself refuses to rewrite the journal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.signing import KeyRing, KeyVerifier, verifier_from_settings
from neutralize.registry import journal, service
from neutralize.registry.domain import entry_hash
from neutralize.registry.models import ChainHead, JournalEntry
from neutralize.registry.schemas import (
    AuditProblem,
    CancelCmd,
    OrganisationCreate,
    RetireCmd,
    TransferCmd,
)

from .conftest import ADMIN, CLOCK, Registry, units

JOURNAL = JournalEntry.__table__
FIELDS = ("chain_seq", "at", "actor", "operation", "idempotency_key", "payload", "prev_hash", "hash")


@dataclass(frozen=True)
class History:
    chain: str  # the project vintage's chain
    entries: int  # how many entries it has
    chains: int  # how many chains there are in all


@pytest.fixture
def history(registry: Registry) -> History:
    """An issuance, a transfer, two retirements and a cancellation: five entries on one vintage chain."""
    owner, buyer = registry.organisation(), registry.organisation()
    project = registry.project(owner)
    issued = registry.issuance(project, kg=10_000)
    session = registry.session
    service.transfer(
        session=session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=TransferCmd(units=units(project, 1_000), to_account_id=buyer.holding, idempotency_key="t-1"),
    )
    for actor, kg, key in ((owner.owner, 340, "r-1"), (buyer.owner, 100, "r-2")):
        service.retire(
            session=session,
            clock=CLOCK,
            actor=actor,
            cmd=RetireCmd(units=units(project, kg), beneficiary="张三", reason="travel", idempotency_key=key),
        )
    service.cancel(
        session=session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=CancelCmd(units=units(project, 50), reason="issued in error", idempotency_key="c-1"),
    )
    report = journal.verify(session=session)
    assert report.ok, report.problems
    # organisations, the project's lifecycle chain and the vintage chain
    assert report.chains == 3
    return History(chain=issued.journal.chain, entries=5, chains=report.chains)


def drop_guards(session: Session) -> None:
    """Let this transaction rewrite the journal (the test's rollback restores the guards)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER journal_no_update")
        connection.exec_driver_sql("DROP TRIGGER journal_no_delete")
    else:
        connection.exec_driver_sql("ALTER TABLE journal DISABLE TRIGGER journal_insert_only")


def row(session: Session, chain: str, seq: int) -> dict[str, Any]:
    found = session.execute(
        select(JOURNAL).where(JOURNAL.c.chain == chain, JOURNAL.c.chain_seq == seq)
    ).mappings()
    return dict(found.one())


def rewrite(session: Session, chain: str, seq: int, /, **values: Any) -> None:
    result = session.execute(
        update(JOURNAL).where(JOURNAL.c.chain == chain, JOURNAL.c.chain_seq == seq).values(**values)
    )
    assert result.rowcount == 1


def remove(session: Session, chain: str, seq: int) -> None:
    result = session.execute(delete(JOURNAL).where(JOURNAL.c.chain == chain, JOURNAL.c.chain_seq == seq))
    assert result.rowcount == 1


def only_problem(session: Session) -> AuditProblem:
    session.expire_all()  # read what the database now holds, not what this session remembers
    report = journal.verify(session=session)
    assert not report.ok
    [problem] = report.problems  # the other chains still verify
    return problem


# --- (a) altered entries ---------------------------------------------------------------------------


def test_an_edited_payload_is_reported_as_altered_at_its_chain_and_seq(
    session: Session, history: History
) -> None:
    # given the third entry (a retirement of 340 kg) is edited to say 34 kg
    original = row(session, history.chain, 3)
    payload = {**original["payload"], "blocks": [{**original["payload"]["blocks"][0], "kg": 34}]}
    drop_guards(session)
    rewrite(session, history.chain, 3, payload=payload)
    # when the journal is verified, then that entry is named
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 3, "altered")


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("actor", lambda v: "someone-else"),
        ("operation", lambda v: "transfer"),
        ("idempotency_key", lambda v: v + "x"),
        ("at", lambda v: v + timedelta(seconds=1)),
        ("payload", lambda v: {**v, "beneficiary": "李四"}),
    ],
)
def test_any_hashed_field_edited_is_reported_as_altered(
    session: Session, history: History, field: str, change: Any
) -> None:
    original = row(session, history.chain, 4)
    drop_guards(session)
    rewrite(session, history.chain, 4, **{field: change(original[field])})
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 4, "altered")


def test_an_edit_with_a_recomputed_hash_breaks_the_link_to_the_next_entry(
    session: Session, history: History
) -> None:
    # given entry 2 is edited and its own hash recomputed, as a careful forger would
    drop_guards(session)
    rewrite(session, history.chain, 2, actor="forger")
    session.expire_all()
    entry = session.scalars(
        select(JournalEntry).where(JournalEntry.chain == history.chain, JournalEntry.chain_seq == 2)
    ).one()
    rewrite(session, history.chain, 2, hash=entry_hash(entry.prev_hash, journal.hashed_fields(entry)))
    # then entry 3 no longer follows it
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 3, "reordered")


# --- (b), (c) removed entries ----------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 2, 3, 4])
def test_a_deleted_entry_before_the_last_is_reported_at_its_seq(
    session: Session, history: History, seq: int
) -> None:
    drop_guards(session)
    remove(session, history.chain, seq)
    problem = only_problem(session)
    assert (problem.chain, problem.seq) == (history.chain, seq)
    assert problem.kind in ("removed", "reordered")


def test_a_deleted_last_entry_is_reported_as_removed(session: Session, history: History) -> None:
    drop_guards(session)
    remove(session, history.chain, history.entries)
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, history.entries, "removed")


def test_every_entry_of_a_chain_deleted_is_reported(session: Session, history: History) -> None:
    drop_guards(session)
    session.execute(delete(JOURNAL).where(JOURNAL.c.chain == history.chain))
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 1, "removed")


def test_a_deleted_last_entry_with_its_head_moved_back_is_a_head_mismatch(
    session: Session, history: History
) -> None:
    # the head row seals the chain: moving its seq back as well does not hide the removal
    drop_guards(session)
    remove(session, history.chain, history.entries)
    session.execute(
        update(ChainHead.__table__)
        .where(ChainHead.__table__.c.chain == history.chain)
        .values(seq=history.entries - 1)
    )
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, history.entries - 1, "head_mismatch")


# --- (d) swapped entries ---------------------------------------------------------------------------


def _swap(session: Session, chain: str, a: int, b: int, fields: tuple[str, ...]) -> None:
    first, second = row(session, chain, a), row(session, chain, b)

    def set_row(id_: int, **values: Any) -> None:
        session.execute(update(JOURNAL).where(JOURNAL.c.id == id_).values(**values))

    # park the first row on unused values so that no unique constraint ever sees two equal rows
    set_row(first["id"], chain_seq=-first["id"], hash="f" * 64)
    set_row(second["id"], **{f: first[f] for f in fields})
    set_row(
        first["id"],
        **{"chain_seq": first["chain_seq"], "hash": first["hash"], **{f: second[f] for f in fields}},
    )


def test_two_entries_with_their_contents_swapped_are_caught_where_the_order_breaks(
    session: Session, history: History
) -> None:
    drop_guards(session)
    _swap(session, history.chain, 2, 3, tuple(f for f in FIELDS if f != "chain_seq"))
    problem = only_problem(session)
    assert (problem.chain, problem.seq) == (history.chain, 2)
    assert problem.kind == "reordered"


def test_two_entries_with_their_seqs_swapped_are_caught_at_the_first_of_them(
    session: Session, history: History
) -> None:
    drop_guards(session)
    _swap(session, history.chain, 3, 4, ("chain_seq",))
    problem = only_problem(session)
    # both entries are still there: out of order, not removed
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 3, "reordered")


def test_two_entries_with_only_their_payloads_swapped_are_altered(session: Session, history: History) -> None:
    drop_guards(session)
    _swap(session, history.chain, 4, 5, ("payload",))
    problem = only_problem(session)
    assert (problem.chain, problem.seq, problem.kind) == (history.chain, 4, "altered")


def test_an_entry_moved_to_another_chain_is_caught_in_both(session: Session, history: History) -> None:
    drop_guards(session)
    rewrite(session, history.chain, 5, chain="organisations", chain_seq=99)
    session.expire_all()
    report = journal.verify(session=session)
    found = {(p.chain, p.seq) for p in report.problems}
    assert (history.chain, 5) in found
    assert any(chain == "organisations" for chain, _ in found)


# --- the database refuses ------------------------------------------------------------------------


def test_the_database_refuses_to_update_or_delete_journal_entries(session: Session, history: History) -> None:
    # given the guards are in place (no one dropped them)
    original = row(session, history.chain, 2)
    # when an entry is updated or deleted directly, the database refuses
    for statement in (
        update(JOURNAL).where(JOURNAL.c.id == original["id"]).values(actor="forger"),
        delete(JOURNAL).where(JOURNAL.c.id == original["id"]),
        delete(JOURNAL),
    ):
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="insert-only"):
            session.execute(statement)
        savepoint.rollback()
    # then the entry and the chain are intact
    assert row(session, history.chain, 2) == original
    session.expire_all()
    assert journal.verify(session=session).ok


def test_an_untouched_journal_verifies_and_counts_its_entries(session: Session, history: History) -> None:
    report = journal.verify(session=session)
    assert (report.ok, report.chains) == (True, history.chains)
    # organisations: 2; project: create + 3 steps + 1 verification; vintage: 5
    assert report.entries == 2 + 5 + history.entries


def test_a_journal_written_with_a_clock_in_another_zone_still_verifies(session: Session) -> None:
    # given an entry written with a clock in Beijing time (aware, +08:00)
    beijing = FixedClock(datetime(2026, 11, 25, 17, tzinfo=timezone(timedelta(hours=8))))
    assert beijing.now() == datetime(2026, 11, 25, 9, tzinfo=UTC)
    service.create_organisation(
        session=session, clock=beijing, actor=ADMIN, cmd=OrganisationCreate(name="京东")
    )
    # when the journal is read back from the database and verified
    session.flush()
    session.expire_all()
    report = journal.verify(session=session)
    # then it verifies, like the same instant written in UTC
    assert report.ok, report.problems


# --- entries past the chain's head -----------------------------------------------------------------

# An entry may lie past the head the audit read (it committed meanwhile): it is verified like any
# other, so a forged or altered entry there is caught all the same.


def test_a_forged_entry_inserted_after_the_last_one_is_caught(session: Session, history: History) -> None:
    # given a forged entry appended with plain INSERT (the guards allow inserts; nothing dropped)
    last = row(session, history.chain, history.entries)
    forged = {
        **{f: last[f] for f in FIELDS},
        "chain": history.chain,
        "chain_seq": history.entries + 1,
        "operation": "transfer",
        "payload": {"blocks": [], "note": "forged"},
        "prev_hash": last["hash"],
        "hash": "e" * 64,
    }
    session.execute(JOURNAL.insert().values(**forged))
    # when the journal is verified, then the forged entry is named
    problem = only_problem(session)
    assert (problem.chain, problem.seq) == (history.chain, history.entries + 1)
    assert problem.kind in ("altered", "head_mismatch")


def test_an_altered_last_entry_with_its_head_moved_back_is_caught(session: Session, history: History) -> None:
    # given the last entry's payload is edited and the head row moved back onto the entry before it
    last, before = (
        row(session, history.chain, history.entries),
        row(session, history.chain, history.entries - 1),
    )
    drop_guards(session)
    rewrite(session, history.chain, history.entries, payload={**last["payload"], "note": "altered"})
    session.execute(
        update(ChainHead.__table__)
        .where(ChainHead.__table__.c.chain == history.chain)
        .values(seq=history.entries - 1, hash=before["hash"])
    )
    # when the journal is verified, then the altered entry (or the moved head just before it) is named
    problem = only_problem(session)
    assert problem.chain == history.chain
    assert problem.seq in (history.entries - 1, history.entries)


# --- unreadable rows, checkpoints and their keys -------------------------------------------------------


# SQLite only: PostgreSQL's json and timestamptz columns hold nothing but JSON and times
@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("column", "stored"),
    [("payload", "not json"), ("at", "garbage"), ("payload", b"{}"), ("payload", b"\xff")],
)
def test_a_row_that_cannot_be_read_is_altered_and_the_other_chains_are_still_checked(
    session: Session, history: History, column: str, stored: str
) -> None:
    # given entry 3's payload (or time) overwritten with text that is not JSON (or not a time)
    drop_guards(session)
    session.connection().exec_driver_sql(
        f"UPDATE journal SET {column} = ? WHERE chain = ? AND chain_seq = 3", (stored, history.chain)
    )
    # when the journal is verified, then that entry is named altered, and the other chains verify
    session.expire_all()
    report = journal.verify(session=session)
    assert [(p.chain, p.seq, p.kind) for p in report.problems] == [(history.chain, 3, "altered")]
    assert report.chains == history.chains


def _checkpointed(session: Session, tmp_path: Path) -> KeyRing:
    keys = KeyRing.open_directory(tmp_path / "keys", clock=CLOCK)
    journal.checkpoint(session=session, clock=CLOCK, keys=keys)
    return keys


def test_a_tail_deleted_with_its_head_moved_back_is_removed_by_the_checkpoint(
    session: Session, history: History, tmp_path: Path
) -> None:
    # given a signed checkpoint, then the last entry deleted and the head moved back to match
    keys = _checkpointed(session, tmp_path)
    drop_guards(session)
    remove(session, history.chain, history.entries)
    last = row(session, history.chain, history.entries - 1)
    session.execute(
        update(ChainHead.__table__)
        .where(ChainHead.__table__.c.chain == history.chain)
        .values(seq=history.entries - 1, hash=last["hash"])
    )
    session.expire_all()
    # then the chain alone verifies, and the checkpoint names the entry it signed as removed
    report = journal.verify(session=session, keys=keys)
    assert [(p.chain, p.seq, p.kind) for p in report.problems] == [
        (history.chain, history.entries, "removed")
    ]


# SQLite only, as above
@pytest.mark.parametrize("db_settings", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("column", "stored"), [("heads", "nope"), ("heads", '[["a", "b"]]'), ("at", "garbage")]
)
def test_a_checkpoint_that_cannot_be_read_is_altered_and_the_chains_are_still_checked(
    session: Session, history: History, tmp_path: Path, column: str, stored: str
) -> None:
    keys = _checkpointed(session, tmp_path)
    session.connection().exec_driver_sql(f"UPDATE checkpoints SET {column} = ?", (stored,))
    session.expire_all()
    report = journal.verify(session=session, keys=keys)
    assert [(p.chain, p.kind) for p in report.problems] == [("checkpoints", "altered")]
    assert report.chains == history.chains


def test_a_checkpoint_signed_by_a_key_not_given_is_reported_as_an_unknown_key(
    session: Session, history: History, tmp_path: Path
) -> None:
    _checkpointed(session, tmp_path)
    report = journal.verify(session=session, keys=KeyVerifier([]))
    assert [(p.chain, p.kind) for p in report.problems] == [("checkpoints", "unknown_key")]


def test_verifying_with_a_missing_key_directory_creates_no_key(
    session: Session, history: History, tmp_path: Path
) -> None:
    # given checkpoints signed by a key in one directory, and settings naming another, missing one
    _checkpointed(session, tmp_path)
    missing = tmp_path / "nowhere"
    settings = Settings(signing_key_dir=missing)
    # when verifying with the keys those settings name
    report = journal.verify(session=session, keys=verifier_from_settings(settings, clock=CLOCK))
    # then nothing was created, and the checkpoint's key is reported unknown (not altered)
    assert not missing.exists()
    assert [p.kind for p in report.problems] == ["unknown_key"]
