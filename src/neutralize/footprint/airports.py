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


@lru_cache(maxsize=1)
def _codes_by_preference() -> tuple[tuple[str, bool], ...]:
    """Every IATA code with whether it is an international airport, international ones first."""
    table = airport_table()
    ranked = sorted(
        (("International" not in name, iata) for iata, name in table.select("iata", "name").iter_rows()),
    )
    return tuple((iata, not domestic) for domestic, iata in ranked)


@lru_cache(maxsize=1024)
def nearest_codes(code: str, *, limit: int = 8) -> tuple[str, ...]:
    """Known IATA codes one or two letters away from ``code``: a hint for a typo.

    Codes differing in fewer letters come first, then those sharing a longer prefix (typos are
    likelier late in a code), then international airports (the ones a traveller most likely
    meant), then the alphabet.
    """
    code = code.strip().upper()[:3].ljust(3)
    ranked = []
    for order, (iata, _international) in enumerate(_codes_by_preference()):
        differing = (iata[0] != code[0]) + (iata[1] != code[1]) + (iata[2] != code[2])
        if differing <= 2:
            prefix = (
                0 if iata[0] != code[0] else (1 if iata[1] != code[1] else (2 if iata[2] != code[2] else 3))
            )
            ranked.append((differing, -prefix, order, iata))
    return tuple(iata for *_, iata in sorted(ranked)[:limit])
