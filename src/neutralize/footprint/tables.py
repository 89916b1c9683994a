"""The lookup tables the engine joins against, built once per catalogue as Polars frames."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import polars as pl

from neutralize.footprint.airports import airport_table
from neutralize.footprint.factors import FactorCatalogue, default_catalogue
from neutralize.footprint.regions import iso_3166_codes
from neutralize.footprint.resolution import default_resolutions, sets_covering

_KEY_COLUMNS = ("requested_set", "type", "k1", "k2", "k3")


@dataclass(frozen=True, eq=False)  # identity equality: built once per catalogue, hashable as a cache key
class EngineTables:
    """Everything the engine needs besides the activities themselves."""

    resolutions: pl.DataFrame
    resolution_keys: dict[str, int]  # "set|type|k1|k2|k3" -> row of ``resolutions``
    airports: pl.DataFrame
    covering: dict[str, tuple[str, ...]]
    hotel_countries: dict[str, tuple[str, ...]]
    electricity_regions: dict[str, tuple[str, ...]]
    iso_codes: tuple[str, ...]


def _resolution_frame(cat: FactorCatalogue) -> pl.DataFrame:
    rows = default_resolutions(cat)
    factors = {r: cat.find(r.factor_set, r.factor_id) for r in rows if r.factor_set and r.factor_id}
    kg_per_amount: list[float | None] = []
    low: list[float | None] = []
    high: list[float | None] = []
    for row in rows:
        factor = factors.get(row)
        if factor is None:
            kg_per_amount.append(None)
            low.append(None)
            high.append(None)
            continue
        kg_per_amount.append(float(row.multiplier * Fraction(factor.value)))
        low.append(
            float(row.multiplier * Fraction(factor.uncertainty_low))
            if factor.uncertainty_low is not None
            else None
        )
        high.append(
            float(row.multiplier * Fraction(factor.uncertainty_high))
            if factor.uncertainty_high is not None
            else None
        )
    return pl.DataFrame(
        {
            "requested_set": [r.requested_set for r in rows],
            "type": [r.type for r in rows],
            "k1": [r.k1 for r in rows],
            "k2": [r.k2 for r in rows],
            "k3": [r.k3 for r in rows],
            "factor_set_used": [r.factor_set for r in rows],
            "factor_id": [r.factor_id for r in rows],
            "kg_per_amount": kg_per_amount,
            "unc_low_per_amount": low,
            "unc_high_per_amount": high,
            "multiplier": [str(r.multiplier) for r in rows],
            "amount_unit": [r.amount_unit for r in rows],
            "notes": ["; ".join(r.notes) for r in rows],
            "factor_region": [r.factor_region for r in rows],
            "factor_year": [r.factor_year for r in rows],
            "resolution_error": [r.error_code.value if r.error_code else None for r in rows],
            "resolution_message": [r.error_message for r in rows],
            "resolution_hint": [r.error_hint for r in rows],
        },
        schema_overrides={
            **dict.fromkeys(
                ("factor_set_used", "factor_id", "multiplier", "amount_unit", "notes"), pl.Categorical
            ),
            "factor_year": pl.Int32,
            "kg_per_amount": pl.Float64,
            "unc_low_per_amount": pl.Float64,
            "unc_high_per_amount": pl.Float64,
        },
    )


def _covered_keys(cat: FactorCatalogue, type_: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for row in default_resolutions(cat):
        if row.type == type_ and row.error_code is None:
            out.setdefault(row.requested_set, set()).add(row.k1)
    return {fs: tuple(sorted(keys)) for fs, keys in out.items()}


@lru_cache(maxsize=4)
def engine_tables(cat: FactorCatalogue | None = None) -> EngineTables:
    """The tables for ``cat`` (the shipped catalogue by default), built on first use."""
    cat = cat or default_catalogue()
    resolutions = _resolution_frame(cat)
    keys = resolutions.select(pl.concat_str(_KEY_COLUMNS, separator="|")).to_series().to_list()
    return EngineTables(
        resolutions=resolutions,
        resolution_keys={key: row for row, key in enumerate(keys)},
        airports=airport_table(),
        covering=sets_covering(cat),
        hotel_countries=_covered_keys(cat, "hotel"),
        electricity_regions=_covered_keys(cat, "electricity"),
        iso_codes=iso_3166_codes(),
    )
