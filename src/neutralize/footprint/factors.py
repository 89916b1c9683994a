"""The factor catalogue: every shipped edition, validated at load, loaded lazily and cached.

Factor values are kept exactly as published (``Decimal`` from the source text). Each source
gets a stable id scheme: DESNZ ids as published (unique together with the edition); other
sources ``<set>:<key>`` as documented in ``docs/factors.md``.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

from neutralize.core.errors import DomainError, ErrorCode, Problem

OGL = "Open Government Licence v3.0"
OGL_ATTRIBUTION = "Contains public sector information licensed under the Open Government Licence v3.0."
DESNZ_SOURCE = "UK DESNZ, Greenhouse gas reporting: conversion factors {year} (flat file)"
DESNZ_URL = "https://www.gov.uk/government/collections/government-conversion-factors-for-company-reporting"
MEE_LICENCE = "Official government publication of the People's Republic of China (MEE/NBS)"
IPCC_LICENCE = "IPCC material, cited"
EPA_LICENCE = "US federal government work, public domain in the US"
SCARBOROUGH_LICENCE = "Open-access article, (c) The Author(s) 2014"

# DESNZ hotel rows by ISO 3166 code (ids are stable across editions; labels are not).
DESNZ_HOTELS: dict[str, str] = {
    "GB": "4000",
    "GB-LND": "4001",
    "AU": "4003",
    "BE": "4005",
    "BR": "4006",
    "CA": "4007",
    "CL": "4008",
    "CN": "4009",
    "CO": "4010",
    "CR": "4011",
    "EG": "4013",
    "FR": "4016",
    "DE": "4017",
    "HK": "4019",
    "IN": "4020",
    "ID": "4021",
    "IT": "4024",
    "JP": "4025",
    "JO": "4026",
    "KR": "4028",
    "MY": "4030",
    "MV": "4031",
    "MX": "4032",
    "NL": "4033",
    "OM": "4035",
    "PH": "4038",
    "PT": "4040",
    "QA": "4041",
    "RU": "4043",
    "SA": "4044",
    "SG": "4045",
    "ZA": "4046",
    "ES": "4047",
    "CH": "4048",
    "TH": "4050",
    "TR": "4051",
    "AE": "4052",
    "US": "4053",
    "VN": "4054",
}
_HOTEL_REGION = {f"29_600_{stem}_13_1": iso for iso, stem in DESNZ_HOTELS.items()}


@dataclass(frozen=True, slots=True)
class Factor:
    """One published factor: kg of ``gas_basis`` per ``unit`` of ``activity``."""

    factor_set: str
    factor_id: str
    activity: str
    unit: str
    value: Decimal
    gas_basis: str  # "CO2e" or "CO2"
    gwp_set: str | None
    edition: str
    region: str | None
    year: int | None
    source: str
    source_url: str | None
    licence: str
    attribution: str | None = None
    uncertainty_low: Decimal | None = None
    uncertainty_high: Decimal | None = None
    note: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.factor_set, self.factor_id)


class FactorSource(Protocol):
    """Where the catalogue reads its files from; the package data unless a test says otherwise."""

    def open_text(self, name: str) -> Iterator[str]: ...

    def names(self) -> list[str]: ...


class PackageFactorSource:
    """The editions shipped inside the package (``footprint/data``)."""

    def _root(self) -> Path:
        return Path(str(resources.files("neutralize.footprint") / "data"))

    def open_text(self, name: str) -> Iterator[str]:
        with (self._root() / name).open(encoding="utf-8", newline="") as handle:
            yield from handle

    def names(self) -> list[str]:
        return sorted(p.name for p in self._root().iterdir() if p.suffix in (".csv", ".md"))


class FactorCatalogue:
    """All factors, indexed by (factor set, id); plus the auxiliary tables the engine needs."""

    def __init__(
        self,
        factors: Iterable[Factor],
        *,
        province_grid: dict[str, str],
        ipcc_ncv_tj_per_gg: dict[str, Decimal],
        checksum: str,
    ) -> None:
        self._by_key: dict[tuple[str, str], Factor] = {}
        problems: list[Problem] = []
        for factor in factors:
            if factor.key in self._by_key:
                problems.append(_problem(f"duplicate factor id {factor.factor_id}", factor))
            self._by_key[factor.key] = factor
        if problems:
            raise DomainError.from_problems(problems)
        self.province_grid = province_grid
        self.ipcc_ncv_tj_per_gg = ipcc_ncv_tj_per_gg
        self.checksum = checksum

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Factor]:
        return iter(self._by_key.values())

    def get(self, factor_set: str, factor_id: str) -> Factor:
        try:
            return self._by_key[(factor_set, factor_id)]
        except KeyError:
            raise DomainError(
                code=ErrorCode.NOT_FOUND,
                message=f"no factor {factor_id!r} in {factor_set}",
            ) from None

    def find(self, factor_set: str, factor_id: str) -> Factor | None:
        return self._by_key.get((factor_set, factor_id))

    def in_set(self, factor_set: str) -> list[Factor]:
        return [f for f in self._by_key.values() if f.factor_set == factor_set]

    def search(self, text: str, *, factor_set: str | None = None) -> list[Factor]:
        """Factors whose id, activity, unit, set or region contain every word of ``text``."""
        words = text.lower().split()
        found = []
        for factor in self._by_key.values():
            if factor_set is not None and factor.factor_set != factor_set:
                continue
            haystack = " ".join(
                (factor.factor_set, factor.factor_id, factor.activity, factor.unit, factor.region or "")
            ).lower()
            if all(word in haystack for word in words):
                found.append(factor)
        return found


def _problem(message: str, factor: Factor | None = None, *, row: int | None = None) -> Problem:
    where = f" ({factor.factor_set} {factor.factor_id})" if factor else ""
    return Problem(code=ErrorCode.FACTOR_DATA_INVALID, message=message + where, row=row)


def _decimal(text: str, *, name: str, row: int) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DomainError.from_problems([_problem(f"{name}: {text!r} is not a number", row=row)]) from None
    if not value.is_finite() or value < 0:
        raise DomainError.from_problems([_problem(f"{name}: {text!r} must be finite and >= 0", row=row)])
    return value


def _rows(source: FactorSource, name: str, required: set[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(source.open_text(name))
    missing = required - set(reader.fieldnames or ())
    if missing:
        raise DomainError.from_problems([_problem(f"{name} lacks columns {sorted(missing)}")])
    yield from enumerate(reader, start=2)


def _desnz(source: FactorSource, name: str, year: int) -> Iterator[Factor]:
    columns = {
        "factor_id",
        "scope",
        "level_1",
        "level_2",
        "level_3",
        "level_4",
        "column_text",
        "unit",
        "ghg_unit",
        "value",
        "edition",
    }
    for number, row in _rows(source, name, columns):
        if row["ghg_unit"] != "kg CO2e":
            continue  # SECR energy-use rows are kWh amounts, not emissions
        if row["edition"] != str(year):
            raise DomainError.from_problems([_problem(f"{name}: edition {row['edition']}", row=number)])
        labels = [row[k] for k in ("level_1", "level_2", "level_3", "level_4", "column_text") if row[k]]
        yield Factor(
            factor_set=f"DESNZ-{year}",
            factor_id=row["factor_id"],
            activity=f"{row['scope']} > " + " > ".join(labels),
            unit=row["unit"],
            value=_decimal(row["value"], name=f"{name} value", row=number),
            gas_basis="CO2e",
            gwp_set=None,
            edition=f"DESNZ {year}",
            region=_HOTEL_REGION.get(row["factor_id"], "GB"),
            year=year,
            source=DESNZ_SOURCE.format(year=year),
            source_url=DESNZ_URL,
            licence=OGL,
            attribution=OGL_ATTRIBUTION,
        )


def _cn_grid(source: FactorSource) -> Iterator[Factor]:
    columns = {
        "region_level",
        "region_code",
        "region_name_en",
        "year",
        "kind",
        "value_kg_co2_per_kwh",
        "source",
        "source_url",
        "notes",
    }
    for number, row in _rows(source, "cn_grid_electricity.csv", columns):
        ets = row["kind"] == "ets_reporting"
        yield Factor(
            factor_set="MEE-ETS-2022" if ets else "MEE-NBS",
            factor_id=f"{row['region_code']}:{row['year']}:{row['kind']}",
            activity=f"Grid electricity, {row['region_name_en']} ({row['region_level']}), {row['kind']}",
            unit="kWh",
            value=_decimal(row["value_kg_co2_per_kwh"], name="cn value", row=number),
            gas_basis="CO2",
            gwp_set=None,
            edition="MEE 2022 ETS reporting factor" if ets else f"MEE & NBS {row['year']}",
            region=row["region_code"],
            year=int(row["year"]),
            source=row["source"],
            source_url=row["source_url"] or None,
            licence=MEE_LICENCE,
            note=row["notes"] or None,
        )


def _ipcc(source: FactorSource) -> Iterator[Factor]:
    columns = {"fuel", "fuel_key", "ncv_tj_per_gg", "co2_kg_per_tj", "source"}
    for number, row in _rows(source, "ipcc_2006_fuels.csv", columns):
        common = {
            "factor_set": "IPCC-2006",
            "gas_basis": "CO2",
            "gwp_set": None,
            "edition": "IPCC 2006 Guidelines, Vol. 2, Ch. 1",
            "region": None,
            "year": None,
            "source": row["source"],
            "source_url": "https://www.ipcc-nggip.iges.or.jp/public/2006gl/vol2.html",
            "licence": IPCC_LICENCE,
        }
        yield Factor(
            factor_id=f"{row['fuel_key']}:co2_per_tj",
            activity=f"Fuel combustion, {row['fuel']}, default CO2 emission factor (Table 1.4)",
            unit="TJ",
            value=_decimal(row["co2_kg_per_tj"], name="co2_kg_per_tj", row=number),
            note=f"net calorific value {row['ncv_tj_per_gg']} TJ/Gg (Table 1.2)",
            **common,  # type: ignore[arg-type]
        )


def _ipcc_ncv(source: FactorSource) -> dict[str, Decimal]:
    """IPCC Table 1.2 default net calorific values by fuel key (TJ per Gg)."""
    rows = _rows(source, "ipcc_2006_fuels.csv", {"fuel_key", "ncv_tj_per_gg"})
    return {row["fuel_key"]: _decimal(row["ncv_tj_per_gg"], name="ncv", row=n) for n, row in rows}


def _epa(source: FactorSource) -> Iterator[Factor]:
    columns = {"mode_key", "vehicle_type", "unit", "co2e_kg_per_unit_ar5_derived", "source", "source_url"}
    for number, row in _rows(source, "epa_hub_2025_business_travel.csv", columns):
        yield Factor(
            factor_set="EPA-2025",
            factor_id=f"table10:{row['mode_key']}",
            activity=f"Business travel, {row['vehicle_type']}",
            unit=row["unit"],
            value=_decimal(row["co2e_kg_per_unit_ar5_derived"], name="co2e", row=number),
            gas_basis="CO2e",
            gwp_set="AR5",
            edition="EPA GHG Emission Factors Hub 2025",
            region="US",
            year=2025,
            source=row["source"],
            source_url=row["source_url"] or None,
            licence=EPA_LICENCE,
            note="CO2e = CO2 + CH4 x 28 + N2O x 265 (AR5), derived from the published per-gas values",
        )


def _diets(source: FactorSource) -> Iterator[Factor]:
    columns = {
        "diet",
        "description",
        "kg_co2e_per_day",
        "ci95_lower",
        "ci95_upper",
        "basis",
        "country",
        "source",
        "source_url",
    }
    for number, row in _rows(source, "diets_scarborough_2014.csv", columns):
        yield Factor(
            factor_set="SCARBOROUGH-2014",
            factor_id=f"diet:{row['diet']}",
            activity=f"Diet, {row['description']}",
            unit="person-day",
            value=_decimal(row["kg_co2e_per_day"], name="kg_co2e_per_day", row=number),
            gas_basis="CO2e",
            gwp_set=None,
            edition="Scarborough et al. 2014",
            region=row["country"],
            year=2014,
            source=row["source"],
            source_url=row["source_url"] or None,
            licence=SCARBOROUGH_LICENCE,
            uncertainty_low=_decimal(row["ci95_lower"], name="ci95_lower", row=number),
            uncertainty_high=_decimal(row["ci95_upper"], name="ci95_upper", row=number),
            note=row["basis"],
        )


def _province_grid(source: FactorSource) -> dict[str, str]:
    rows = _rows(source, "cn_province_grid.csv", {"region_code", "grid_code"})
    return {row["region_code"]: row["grid_code"] for _, row in rows}


def _checksum(source: FactorSource) -> str:
    digest = hashlib.sha256()
    for name in source.names():
        digest.update(name.encode())
        for line in source.open_text(name):
            digest.update(line.encode())
    return digest.hexdigest()


def load_catalogue(source: FactorSource) -> FactorCatalogue:
    """Read and validate every edition from ``source``; raises ``DomainError`` if any is bad."""
    factors: list[Factor] = []
    factors += _desnz(source, "desnz_2025.csv", 2025)
    factors += _desnz(source, "desnz_2024.csv", 2024)
    factors += _cn_grid(source)
    factors += _ipcc(source)
    factors += _epa(source)
    factors += _diets(source)
    return FactorCatalogue(
        factors,
        province_grid=_province_grid(source),
        ipcc_ncv_tj_per_gg=_ipcc_ncv(source),
        checksum=_checksum(source),
    )


@lru_cache(maxsize=1)
def default_catalogue() -> FactorCatalogue:
    """The shipped catalogue, loaded on first use and kept for the life of the process."""
    return load_catalogue(PackageFactorSource())
