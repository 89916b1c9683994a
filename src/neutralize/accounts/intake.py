"""Taking in a partner's records: credit them column-wise and keep every outcome in the history.

``ingest`` is the one way records enter the platform (the API, the CLI and the demo use it):

1. the partner is the integrator key's organisation, whatever a row says;
2. a record whose (partner, external id) was received before is left alone: re-sending a file
   changes nothing;
3. a person's linked accounts share one person key (the user), so the same behaviour reported by
   two linked partners is credited once;
4. the batch engine (``accounts.batch``) validates, checks, de-duplicates and credits the rest;
5. what earlier uploads credited still counts: a new record that overlaps a credited one of the same
   person and behaviour is ``overlapping_behaviour``, and a daily cap counts the grams credited
   earlier that day (``daily_cap_reached``);
6. every identifiable row is kept once in ``account_entries`` (with 0 g and its code when refused),
   and the accounts' running totals grow by what was credited. Rows that cannot be identified (no
   valid account reference or external id) are only reported, with their row numbers.

Uploads of the same people run one after the other (``_hold_people``), so that two at once cannot
both credit one behaviour. Nothing is kept from an upload that fails as a whole: the caller's unit
of work rolls it back.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
from pydantic import BaseModel
from sqlalchemy import ARRAY, String, Table, any_, bindparam, cast, insert, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.accounts.batch import ROW, credit_frame, epoch_seconds
from neutralize.accounts.catalogue import default_book
from neutralize.accounts.domain import CHINA_OFFSET_S, DAY_S, Book
from neutralize.accounts.methodologies.formulas import daily_cap
from neutralize.accounts.models import AccountEntry, CarbonAccount
from neutralize.accounts.records import FIELD_ORDER, MODES, Behaviour
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.ids import new_ids

MEASURE_FIELDS = tuple(
    name
    for name in FIELD_ORDER
    if name not in ("partner", "account_ref", "external_id", "person", "behaviour", "start_time", "end_time")
)
IN_CHUNK = 5_000  # identifiers per IN (...) list
PROBLEMS_SHOWN = 1_000
# An upload of many people takes every stripe (and runs alone); a small one, a few. At most this
# many locks an upload, well inside PostgreSQL's shared lock table (64 per connection by default).
PEOPLE_STRIPES = 32
HOLD_PEOPLE = text(
    "SELECT count(pg_advisory_xact_lock(hashtext('neutralize.people'), s)) "
    "FROM unnest(CAST(:stripes AS integer[])) AS s"  # in the array's order
)
OPEN_ACCOUNTS = text(
    "INSERT INTO carbon_accounts (id, partner_id, reference, credited_g, bundled_g, points_spent, "
    "created_at) SELECT v.id, :partner, v.reference, v.grams, 0, 0, :now FROM unnest(CAST(:ids AS text[]), "
    "CAST(:references AS text[]), CAST(:grams AS bigint[])) AS v(id, reference, grams) "
    "ON CONFLICT (partner_id, reference) DO NOTHING RETURNING reference, id"
)


class RowProblem(BaseModel):
    row: int
    code: str
    external_id: str | None


class IngestReport(BaseModel):
    received: int
    already_received: int  # sent before: nothing changed
    credited: int  # rows credited some grams (possibly capped)
    refused: int  # rows credited nothing, with their codes
    grams: int
    problems: list[RowProblem]  # the refused and capped rows, first PROBLEMS_SHOWN
    linked_users: list[str]  # people whose reductions changed (leaderboards follow them)


@dataclass(frozen=True)
class Credited:
    """One record's outcome credited elsewhere (by a tool or a recomputation), to keep as the intake
    keeps its own: ``keep``."""

    external_id: str
    behaviour: str
    started_at: datetime
    ended_at: datetime
    measures: dict[str, Any]
    grams: int
    code: str | None
    methodology: str | None
    parameters_sha256: str | None


@dataclass(frozen=True)
class _Span:
    person: str
    behaviour: str
    cap_key: str
    cap: int  # grams a day
    day: int
    start_s: int
    end_s: int


def ingest(
    *, session: Session, clock: Clock, actor: Actor, raw: pl.DataFrame, book: Book | None = None
) -> IngestReport:
    """Credit a partner's records (the raw table of ``accounts.ingest``) and keep the outcomes."""
    partner = require(actor, Role.INTEGRATOR).organisation_id
    if partner is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="this key belongs to no organisation")
    book = book or default_book()
    missing = [
        pl.lit(None, dtype=pl.String).alias(name)
        for name in FIELD_ORDER
        if name not in raw.columns and name != "partner"
    ]
    raw = raw.with_columns(*missing, pl.lit(partner, dtype=pl.String).alias("partner"))
    users = _linked_users(session, partner, _texts(raw, "account_ref"))
    if users:
        person = pl.col("account_ref").replace_strict(users, default=None, return_dtype=pl.String)
        raw = raw.with_columns(pl.coalesce(person, pl.col("person").cast(pl.String)).alias("person"))
    _hold_people(session, partner, _texts(raw, "account_ref"), users)
    known = _received(session, partner, _texts(raw, "external_id"))
    seen = pl.col("external_id").cast(pl.String).is_in(list(known)).fill_null(False)
    fresh = raw.filter(~seen) if known else raw
    result = credit_frame(fresh, book, now_s=int(clock.now().timestamp()))
    rows = fresh.join(result.credits.drop("partner", "account_ref", "external_id"), on=ROW, how="inner")
    rows = rows.with_columns(
        epoch_seconds(pl.col("start_time"), fresh.schema["start_time"]).alias("_start_s"),
        epoch_seconds(pl.col("end_time"), fresh.schema["end_time"]).alias("_end_s"),
    )
    rows = _against_earlier(session, partner, book, rows)
    kept = rows.filter(
        pl.col("account_ref").is_not_null()
        & pl.col("external_id").is_not_null()
        & pl.col("_start_s").is_not_null()
        & pl.col("_end_s").is_not_null()
        & pl.col("behaviour").cast(pl.String).is_in([b.value for b in Behaviour])
        & (pl.col("code").cast(pl.String).fill_null("") != ErrorCode.DUPLICATE_RECORD.value)
    )
    # A row refused before the duplicate check does not hold its id: a later valid row of the same id
    # is the one kept.
    refused_first = pl.col("credited_g").fill_null(0) == 0
    kept = kept.sort("external_id", refused_first, ROW).unique(
        "external_id", keep="first", maintain_order=True
    )
    _store(session, clock, partner, kept)
    credited = rows.filter(pl.col("credited_g") > 0)
    problems = rows.filter(pl.col("code").is_not_null()).sort(ROW).head(PROBLEMS_SHOWN)
    return IngestReport(
        received=raw.height,
        already_received=raw.height - fresh.height,
        credited=credited.height,
        refused=rows.height - credited.height,
        grams=int(credited["credited_g"].sum() or 0),
        problems=[
            RowProblem(row=int(r[ROW]), code=str(r["code"]), external_id=r["external_id"])
            for r in problems.select(ROW, pl.col("code").cast(pl.String), "external_id").iter_rows(named=True)
        ],
        linked_users=sorted({users[ref] for ref in _texts(credited, "account_ref") if ref in users}),
    )


def keep(
    *, session: Session, clock: Clock, partner_id: str, reference: str, outcomes: Sequence[Credited]
) -> int:
    """Keep outcomes credited elsewhere for one of the partner's accounts, through the intake's own
    storage: each (partner, external id) once, so a record seen before changes nothing. Returns how
    many were new."""
    _hold_people(session, partner_id, [reference], _linked_users(session, partner_id, [reference]))
    known = _received(session, partner_id, [o.external_id for o in outcomes])
    fresh = list({o.external_id: o for o in outcomes if o.external_id not in known}.values())
    if not fresh:
        return 0
    schema: dict[str, type[pl.DataType]] = dict.fromkeys(
        ("account_ref", "external_id", "behaviour", *MEASURE_FIELDS), pl.String
    )
    schema |= {"_start_s": pl.Int64, "_end_s": pl.Int64, "credited_g": pl.Int64, "reduction_g": pl.Int64}
    schema |= {"code": pl.String, "methodology": pl.String, "parameters_sha256": pl.String}
    rows = pl.DataFrame(
        [
            {
                **{
                    name: None if o.measures.get(name) is None else str(o.measures[name])
                    for name in MEASURE_FIELDS
                },
                "account_ref": reference,
                "external_id": o.external_id,
                "behaviour": o.behaviour,
                "_start_s": int(o.started_at.timestamp()),
                "_end_s": int(o.ended_at.timestamp()),
                "credited_g": o.grams,
                "reduction_g": o.grams,
                "code": o.code,
                "methodology": o.methodology,
                "parameters_sha256": o.parameters_sha256,
            }
            for o in fresh
        ],
        schema=schema,
    )
    _store(session, clock, partner_id, rows)
    return len(fresh)


def _texts(frame: pl.DataFrame, column: str) -> list[str]:
    return [str(v) for v in frame[column].cast(pl.String).drop_nulls().unique().to_list()]


def _one_of(session: Session, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL, an IN list elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(list(values), ARRAY(String)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _linked_users(session: Session, partner: str, references: Sequence[str]) -> dict[str, str]:
    """The user each of the partner's linked accounts belongs to, by reference."""
    found: dict[str, str] = {}
    for chunk in _chunks(references):
        rows = session.execute(
            select(CarbonAccount.reference, CarbonAccount.user_id).where(
                CarbonAccount.partner_id == partner,
                _one_of(session, CarbonAccount.reference, chunk),
                CarbonAccount.user_id.is_not(None),
            )
        )
        found.update({str(ref): str(user) for ref, user in rows})
    return found


def _hold_people(session: Session, partner: str, references: Sequence[str], users: Mapping[str, str]) -> None:
    """PostgreSQL: wait until no other upload of the same people is running, and keep them until this
    one commits, so that what it reads of their earlier records (sent before, overlaps, daily caps)
    stays true. People are held by ``PEOPLE_STRIPES`` advisory locks, taken in ascending order so
    that two uploads never wait for each other; SQLite's writer lock holds the whole database."""
    if not references or session.get_bind().dialect.name != "postgresql":
        return
    who = {users.get(ref) or f"{partner}/{ref}" for ref in references}
    stripes = sorted({zlib.crc32(person.encode()) % PEOPLE_STRIPES for person in who})
    session.execute(HOLD_PEOPLE, {"stripes": stripes})


def _received(session: Session, partner: str, external_ids: Sequence[str]) -> set[str]:
    """The ids among ``external_ids`` the partner sent before."""
    seen: set[str] = set()
    for chunk in _chunks(external_ids):
        wanted = _one_of(session, AccountEntry.external_id, chunk)
        seen.update(
            session.scalars(
                select(AccountEntry.external_id).where(AccountEntry.partner_id == partner, wanted)
            )
        )
    return seen


def _against_earlier(session: Session, partner: str, book: Book, rows: pl.DataFrame) -> pl.DataFrame:
    """Overlaps and daily caps against what earlier uploads credited to the same people."""
    counted = rows.filter(pl.col("credited_g") > 0)
    if counted.is_empty():
        return rows
    people = counted.with_columns(
        pl.coalesce(pl.col("person").cast(pl.String), pl.lit(partner + "/") + pl.col("account_ref")).alias(
            "_who"
        )
    )
    earlier = _earlier_spans(session, partner, people, book)
    if not earlier:
        return rows
    used: dict[tuple[str, str, str, int], int] = {}
    spans_of: dict[tuple[str, str], list[_Span]] = {}
    for span, grams in earlier:
        group = (span.person, span.behaviour, span.cap_key, span.day)
        used[group] = used.get(group, 0) + grams
        spans_of.setdefault((span.person, span.behaviour), []).append(span)
    changes: dict[int, tuple[str, int]] = {}
    ordered = people.sort("_who", "behaviour", "_start_s", "_end_s", ROW)
    for r in ordered.iter_rows(named=True):
        span = _span(book, r["_who"], str(r["behaviour"]), r["mode"], r["_start_s"], r["_end_s"])
        if any(_overlap(span, other) for other in spans_of.get((span.person, span.behaviour), [])):
            changes[r[ROW]] = (ErrorCode.OVERLAPPING_BEHAVIOUR.value, 0)
            continue
        group = (span.person, span.behaviour, span.cap_key, span.day)
        before = used.get(group, 0)
        if before:
            allowed = min(int(r["credited_g"]), max(0, span.cap - before))
            if allowed < r["credited_g"]:
                changes[r[ROW]] = (ErrorCode.DAILY_CAP_REACHED.value, allowed)
        used[group] = before + int(r["reduction_g"])
    if not changes:
        return rows
    fix = pl.DataFrame(
        {
            ROW: list(changes),
            "_code": [c for c, _ in changes.values()],
            "_grams": [g for _, g in changes.values()],
        },
        schema={ROW: pl.Int64, "_code": pl.String, "_grams": pl.Int64},
    )
    return (
        rows.join(fix, on=ROW, how="left")
        .with_columns(
            pl.coalesce(pl.col("_code"), pl.col("code").cast(pl.String)).alias("code"),
            pl.coalesce(pl.col("_grams"), pl.col("credited_g")).alias("credited_g"),
        )
        .drop("_code", "_grams")
    )


def _span(book: Book, who: str, behaviour: str, mode: str | None, start_s: int, end_s: int) -> _Span:
    cap_key, cap = _cap(book, behaviour, mode)
    return _Span(who, behaviour, cap_key, cap, (start_s + CHINA_OFFSET_S) // DAY_S, start_s, end_s)


def _cap(book: Book, behaviour: str, mode: str | None) -> tuple[str, int]:
    """The daily cap's key and grams for a behaviour and mode (looked up once per book)."""
    parameters = book.methodologies[Behaviour(behaviour)][1]
    key = (parameters.sha256, behaviour, mode)  # a parameter set is known by its content
    if key not in _CAPS:
        _CAPS[key] = daily_cap(parameters, mode or MODES[Behaviour(behaviour)][0])
    return _CAPS[key]


_CAPS: dict[tuple[str, str, str | None], tuple[str, int]] = {}


def _overlap(a: _Span, b: _Span) -> bool:
    return a.person == b.person and a.behaviour == b.behaviour and a.start_s < b.end_s and b.start_s < a.end_s


def _earlier_spans(
    session: Session, partner: str, people: pl.DataFrame, book: Book
) -> list[tuple[_Span, int]]:
    """Credited entries of the batch's people, from their first day to their last."""
    first = datetime.fromtimestamp(int(people["_start_s"].min()) - DAY_S, tz=UTC)  # type: ignore[arg-type]
    last = datetime.fromtimestamp(int(people["_end_s"].max()) + DAY_S, tz=UTC)  # type: ignore[arg-type]
    refs = _texts(people, "account_ref")
    users = _texts(people.filter(~pl.col("_who").str.starts_with(partner + "/")), "_who")
    accounts = CarbonAccount
    entries = AccountEntry
    spans: list[tuple[_Span, int]] = []
    queries: list[ColumnElement[bool]] = []
    for chunk in _chunks(refs):
        queries.append((accounts.partner_id == partner) & _one_of(session, accounts.reference, chunk))
    for chunk in _chunks(users):
        queries.append(_one_of(session, accounts.user_id, chunk))
    for where in queries:
        rows = session.execute(
            select(
                accounts.partner_id,
                accounts.reference,
                accounts.user_id,
                entries.behaviour,
                entries.measures,
                entries.started_at,
                entries.ended_at,
                entries.grams,
            )
            .join(accounts, accounts.id == entries.account_id)
            .where(where, entries.grams > 0, entries.started_at >= first, entries.started_at <= last)
        )
        for owner, reference, user, behaviour, measures, started, ended, grams in rows:
            who = user or f"{owner}/{reference}"
            start_s = int(_utc(started).timestamp())
            end_s = int(_utc(ended).timestamp())
            spans.append(
                (_span(book, who, behaviour, (measures or {}).get("mode"), start_s, end_s), int(grams))
            )
    return list(dict.fromkeys(spans))


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _store(session: Session, clock: Clock, partner: str, rows: pl.DataFrame) -> None:
    """Open the accounts the rows name, insert their entries, add the credited grams to the totals."""
    if rows.is_empty():
        return
    now = clock.now()
    totals = rows.group_by("account_ref").agg(pl.col("credited_g").fill_null(0).sum())
    credited = {str(ref): int(g) for ref, g in totals.iter_rows() if ref is not None}
    ids, opened = _open(session, partner, list(credited), now, credited)
    measure_columns = [c for c in MEASURE_FIELDS if c in rows.columns]
    measures = [
        json.dumps({k: v for k, v in m.items() if v is not None}, ensure_ascii=False)
        for m in rows.select(pl.col(measure_columns).cast(pl.String)).iter_rows(named=True)
    ]
    code = pl.col("code").cast(pl.String)
    entries = rows.select(
        pl.lit(partner).alias("partner_id"),
        pl.col("external_id").cast(pl.String),
        pl.col("account_ref").cast(pl.String).replace_strict(ids).alias("account_id"),
        pl.col("behaviour").cast(pl.String),
        pl.from_epoch("_start_s", "s").dt.replace_time_zone("UTC").alias("started_at"),
        pl.from_epoch("_end_s", "s").dt.replace_time_zone("UTC").alias("ended_at"),
        pl.Series("measures", measures, dtype=pl.String),
        (pl.col("distance_km").cast(pl.Float64, strict=False) * 1000)
        .floor()
        .cast(pl.Int64)
        .alias("distance_m"),
        pl.col("credited_g").fill_null(0).cast(pl.Int64).alias("grams"),
        code.alias("code"),
        pl.col("methodology").cast(pl.String),
        pl.col("parameters_sha256").cast(pl.String),
        pl.concat_str(
            pl.lit('{"reduction_g": '),
            pl.col("reduction_g").fill_null(0).cast(pl.String),
            pl.lit(', "code": '),
            pl.when(code.is_null()).then(pl.lit("null")).otherwise(pl.lit('"') + code + pl.lit('"')),
            pl.lit("}"),
        ).alias("rules"),
        pl.lit(now).dt.convert_time_zone("UTC").alias("received_at"),
    )
    insert_entries(session, entries)
    grown = [(ids[ref], g) for ref, g in credited.items() if g and ref not in opened]  # opened with theirs
    if grown:  # added in the database, so that uploads for one account at once add up
        table = CarbonAccount.__table__
        assert isinstance(table, Table)
        if session.get_bind().dialect.name == "postgresql":  # one statement for every account
            session.execute(
                text(
                    "UPDATE carbon_accounts AS a SET credited_g = a.credited_g + v.grams FROM "
                    "unnest(CAST(:ids AS text[]), CAST(:grams AS bigint[])) AS v(id, grams) WHERE a.id = v.id"
                ),
                {"ids": [a for a, _ in grown], "grams": [g for _, g in grown]},
            )
        else:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("account"))
                .values(credited_g=table.c.credited_g + bindparam("grams")),
                [{"account": a, "grams": g} for a, g in grown],
            )
        for loaded in [o for o in session.identity_map.values() if isinstance(o, CarbonAccount)]:
            session.expire(loaded, ["credited_g"])


def open_accounts(session: Session, partner: str, references: Sequence[str], now: datetime) -> dict[str, str]:
    """The account ids of ``references``, opening those the partner names for the first time."""
    return _open(session, partner, references, now, {})[0]


def _open(
    session: Session, partner: str, references: Sequence[str], now: datetime, credited: Mapping[str, int]
) -> tuple[dict[str, str], set[str]]:
    """The account ids of ``references`` and the references opened now, each with ``credited`` grams
    (0 if not named). On PostgreSQL one statement opens them all, and an account another upload opened
    at the same moment is read rather than refused."""
    ids: dict[str, str] = {}
    for chunk in _chunks(references):
        found = session.execute(
            select(CarbonAccount.reference, CarbonAccount.id).where(
                CarbonAccount.partner_id == partner, _one_of(session, CarbonAccount.reference, chunk)
            )
        )
        ids.update({str(reference): str(account) for reference, account in found})
    new = [ref for ref in dict.fromkeys(references) if ref not in ids]
    if not new:
        return ids, set()
    made = dict(zip(new, new_ids("cac", now, len(new)), strict=True))
    if session.get_bind().dialect.name == "postgresql":
        values = {"ids": list(made.values()), "partner": partner, "references": new,
                  "grams": [credited.get(ref, 0) for ref in new], "now": now}  # fmt: skip
        opened = {str(ref): str(account) for ref, account in session.execute(OPEN_ACCOUNTS, values)}
        if len(opened) < len(new):  # opened meanwhile by another upload, which committed first
            ids.update(_open(session, partner, [r for r in new if r not in opened], now, credited)[0])
        ids.update(opened)
        return ids, set(opened)
    session.execute(
        insert(CarbonAccount),
        [
            {"id": made[ref], "partner_id": partner, "reference": ref, "credited_g": credited.get(ref, 0),
             "bundled_g": 0, "points_spent": 0, "created_at": now}
            for ref in new
        ],
    )  # fmt: skip
    ids.update(made)
    return ids, set(new)


def insert_entries(session: Session, entries: pl.DataFrame) -> None:
    """Insert history entries (``measures`` and ``rules`` as JSON text): PostgreSQL's COPY of the table
    as CSV in one stream where it runs, a multi-row insert elsewhere."""
    if entries.is_empty():
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        rows = entries.to_dicts()
        for row in rows:
            row["measures"], row["rules"] = json.loads(row["measures"]), json.loads(row["rules"])
        session.execute(insert(AccountEntry), rows)
        return
    statement = (
        f"COPY account_entries ({', '.join(entries.columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    )
    csv = entries.write_csv(include_header=False, null_value="\\N")
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        copy.write(csv)
