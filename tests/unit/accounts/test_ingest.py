"""Reading record files: bad files are refused whole, bad rows one by one with their numbers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from neutralize.accounts.batch import credit_frame
from neutralize.accounts.catalogue import default_book
from neutralize.accounts.ingest import read_records
from neutralize.core.errors import DomainError, ErrorCode

from .helpers import NOW_S, record


def at(start: str, end: str, **fields: object) -> str:
    return json.dumps(record(start_time=start, end_time=end, **fields))


def credited(path: Path) -> list[tuple[int, str | None, int]]:
    out = credit_frame(read_records(path), default_book(), now_s=NOW_S).credits
    return [(row["row"], row["code"], row["credited_g"]) for row in out.iter_rows(named=True)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_json_lines_keep_valid_rows_and_number_the_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps(record()),
        "{not json",
        "",  # blank lines are not records
        json.dumps(record(external_id="t2", distance_km=-5)),
        json.dumps(record(external_id="t3", mode="hovercraft")),
        at("1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z", external_id="t4"),
        at("2027-01-01T00:00:00Z", "2027-01-01T01:00:00Z", external_id="t5"),
        json.dumps(record(external_id="t6", distance_km=1e9)),
        at("2026-03-02T10:00:00+08:00", "2026-03-02T11:00:00+08:00", external_id="t7"),
    ]
    assert credited(write_lines(tmp_path / "trips.jsonl", lines)) == [
        (1, None, 467),
        (2, "malformed_row", 0),
        (3, "out_of_range", 0),
        (4, "unknown_value", 0),
        (5, "time_before_epoch", 0),
        (6, "time_in_future", 0),
        (7, "out_of_range", 0),
        (8, None, 467),
    ]


def test_a_line_longer_than_the_limit_is_malformed(tmp_path: Path) -> None:
    long_line = json.dumps(record(account_ref="a", external_id="x" * 20_000))
    assert credited(write_lines(tmp_path / "long.jsonl", [long_line])) == [(1, "malformed_row", 0)]


def test_csv_rows_are_numbered_from_the_first_record(tmp_path: Path) -> None:
    trips = [record(), record(external_id="t2", distance_km="abc")]
    path = tmp_path / "trips.csv"
    pl.DataFrame(trips, schema=dict.fromkeys(trips[0], pl.String)).write_csv(path)
    assert credited(path) == [(1, None, 467), (2, "wrong_type", 0)]


def test_parquet_with_typed_columns_credits_the_same(tmp_path: Path) -> None:
    path = tmp_path / "trips.parquet"
    later = json.loads(
        at("2026-03-02T10:00:00+08:00", "2026-03-02T11:00:00+08:00", external_id="t2", distance_km=12.345)
    )
    frame = pl.DataFrame([record(), later])
    frame.with_columns(pl.col("start_time", "end_time").str.to_datetime(time_zone="UTC")).write_parquet(path)
    assert credited(path) == [(1, None, 467), (2, None, 576)]


def test_naive_timestamps_in_parquet_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "naive.parquet"
    frame = pl.DataFrame([record(start_time="2026-03-02T08:00:00", end_time="2026-03-02T09:00:00")])
    frame.with_columns(pl.col("start_time", "end_time").str.to_datetime()).write_parquet(path)
    assert credited(path) == [(1, "wrong_type", 0)]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("trips.xlsx", b"PK", ErrorCode.UNSUPPORTED_FORMAT),
        ("trips.parquet", b"not parquet at all", ErrorCode.UNSUPPORTED_FORMAT),
        ("trips.csv", b"partner,account_ref,colour\np,a,green\n", ErrorCode.UNKNOWN_FIELD),
        ("trips.csv", b'partner,account_ref\n"p,a\n', ErrorCode.UNSUPPORTED_FORMAT),
    ],
)
def test_unreadable_files_are_refused_whole(
    tmp_path: Path, name: str, content: bytes, code: ErrorCode
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DomainError) as caught:
        read_records(path)
    assert caught.value.code == code


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "big.jsonl", [json.dumps(record())] * 10)
    with pytest.raises(DomainError) as caught:
        read_records(path, max_bytes=100)
    assert caught.value.code == ErrorCode.PAYLOAD_TOO_LARGE


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_too_many_records_are_refused(tmp_path: Path, suffix: str) -> None:
    trips = [record(external_id=f"t{i}") for i in range(4)]
    path = tmp_path / f"many{suffix}"
    if suffix == ".csv":
        pl.DataFrame(trips, schema=dict.fromkeys(trips[0], pl.String)).write_csv(path)
    else:
        write_lines(path, [json.dumps(t) for t in trips])
    with pytest.raises(DomainError) as caught:
        read_records(path, max_records=3)
    assert caught.value.code == ErrorCode.TOO_MANY_RECORDS


def test_categorical_columns_credit_like_text(tmp_path: Path) -> None:
    path = tmp_path / "categorical.parquet"
    trips = [record(), record(external_id="t2", mode="hovercraft")]
    frame = pl.DataFrame(trips).with_columns(
        pl.col("partner", "behaviour", "mode").cast(pl.Categorical),
        pl.col("start_time", "end_time").str.to_datetime(time_zone="UTC"),
    )
    frame.write_parquet(path)
    assert credited(path) == [(1, None, 467), (2, "unknown_value", 0)]
