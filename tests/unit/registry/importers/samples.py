"""Helpers shared by the importer tests: sample files, CSV building, and problem summaries."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry.importers.records import ImportResult

DATA = Path(__file__).resolve().parents[3] / "data" / "registry"

Parser = Callable[[str], ImportResult]


def sample(name: str) -> str:
    """The text of a sample export in ``tests/data/registry``."""
    return (DATA / name).read_text(encoding="utf-8")


def csv_text(columns: Sequence[str], rows: Sequence[dict[str, str] | Sequence[str]]) -> str:
    """A CSV file with ``columns`` as header; dict rows are written in column order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns] if isinstance(row, dict) else row)
    return out.getvalue()


def rejected(parse: Parser, text: str) -> list[tuple[int | None, str | None]]:
    """Parse ``text`` expecting a refusal; the (line, column) of every problem, all coded INVALID_IMPORT."""
    with pytest.raises(DomainError) as caught:
        parse(text)
    error = caught.value
    assert error.code is ErrorCode.INVALID_IMPORT
    assert {p.code for p in error.problems} == {ErrorCode.INVALID_IMPORT}
    return [(p.row, p.field) for p in error.problems]
