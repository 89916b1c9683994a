"""Airports by IATA code, from the ``airportsdata`` package (loaded once, on first use)."""

from __future__ import annotations

import difflib
from functools import lru_cache

import airportsdata
import polars as pl


@lru_cache(maxsize=1)
def airport_table() -> pl.DataFrame:
    """One row per IATA code: ``iata``, ``lat``, ``lon`` (degrees), ``country`` (ISO alpha-2)."""
    airports = airportsdata.load("IATA")
    return pl.DataFrame(
        {
            "iata": list(airports),
            "lat": [a["lat"] for a in airports.values()],
            "lon": [a["lon"] for a in airports.values()],
            "country": [a["country"] for a in airports.values()],
        },
        schema={"iata": pl.String, "lat": pl.Float64, "lon": pl.Float64, "country": pl.String},
    )


def nearest_codes(code: str, *, limit: int = 5) -> list[str]:
    """Known IATA codes that look most like ``code``: a hint for a typo."""
    known = airport_table()["iata"].to_list()
    return difflib.get_close_matches(code.upper(), known, n=limit, cutoff=0.3)
