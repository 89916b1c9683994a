"""Airports by IATA code, from the ``airportsdata`` package (loaded once, on first use)."""

from __future__ import annotations

from functools import lru_cache

import airportsdata
import polars as pl


@lru_cache(maxsize=1)
def airport_table() -> pl.DataFrame:
    """One row per IATA code: ``iata``, ``lat``, ``lon`` (degrees), ``country`` (ISO alpha-2), ``name``."""
    airports = airportsdata.load("IATA")
    return pl.DataFrame(
        {
            "iata": list(airports),
            "lat": [a["lat"] for a in airports.values()],
            "lon": [a["lon"] for a in airports.values()],
            "country": [a["country"] for a in airports.values()],
            "name": [a["name"] for a in airports.values()],
        },
        schema={
            "iata": pl.String,
            "lat": pl.Float64,
            "lon": pl.Float64,
            "country": pl.String,
            "name": pl.String,
        },
    )


def nearest_codes(code: str, *, limit: int = 8) -> list[str]:
    """Known IATA codes one or two letters away from ``code``: a hint for a typo.

    Codes differing in fewer letters come first, then those sharing a longer prefix (typos are
    likelier late in a code), then international airports (the ones a traveller most likely
    meant), then the alphabet.
    """
    code = code.strip().upper()[:3]
    ranked = []
    for iata, name in airport_table().select("iata", "name").iter_rows():
        differing = sum(a != b for a, b in zip(iata, code.ljust(3), strict=True))
        if differing <= 2:
            prefix = next((i for i, (a, b) in enumerate(zip(iata, code, strict=False)) if a != b), 3)
            ranked.append((differing, -prefix, "International" not in name, iata))
    return [iata for *_, iata in sorted(ranked)[:limit]]
