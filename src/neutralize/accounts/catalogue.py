"""Loading methodology parameter sets: the packaged file, the footprint engine's factors, overrides.

Two kinds of value come from the footprint engine's editions rather than from
``methodologies/parameters.csv``, so that the platform has one copy of each published factor:

* the IPCC 2006 fuel factors: the packaged diesel and petrol rows must equal the footprint
  edition's default CO2 factor x net calorific value, or loading fails;
* the grid factors for new-energy vehicles: every (province or CN, year) the footprint engine
  resolves for MEE/NBS electricity, with its fallbacks (regional grid, nearest year) written
  into the parameter's notes.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from pathlib import Path

from neutralize.accounts.batch import coefficient_table
from neutralize.accounts.domain import RULES_REF, Book
from neutralize.accounts.methodologies import Parameter, ParameterSet, parameters_invalid
from neutralize.accounts.methodologies.formulas import DEFAULT_FOR, GRID_EF, methodology
from neutralize.accounts.records import Behaviour
from neutralize.footprint.factors import FactorCatalogue, default_catalogue
from neutralize.footprint.resolution import default_resolutions

PARAMETER_FILE = "parameters.csv"
COLUMNS = (
    "methodology",
    "version",
    "parameter",
    "key",
    "value",
    "unit",
    "status",
    "source",
    "source_url",
    "notes",
)
GRID_YEARS = range(2010, 2101)
# Packaged fuel rows that must match the footprint engine's IPCC-2006 edition: (parameter, fuel key).
IPCC_CHECKS = {
    "freight_matching": ("diesel_co2_kg_per_kg", "gas_diesel_oil"),
    "nev_driving": ("petrol_co2_kg_per_kg", "motor_gasoline"),
}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise parameters_invalid(f"{path.name} must have the columns {', '.join(COLUMNS)}")
        return list(reader)


def _parameter(row: dict[str, str], number: int) -> Parameter:
    try:
        value = Decimal(row["value"])
    except InvalidOperation:
        raise parameters_invalid(f"{PARAMETER_FILE} row {number}: {row['value']!r} is not a number") from None
    if not value.is_finite():
        raise parameters_invalid(f"{PARAMETER_FILE} row {number}: {row['value']!r} is not finite")
    return Parameter(
        name=row["parameter"],
        key=row["key"],
        value=value,
        unit=row["unit"],
        status=row["status"],
        source=row["source"],
        source_url=row["source_url"],
        notes=row["notes"],
    )


def packaged_parameters(path: Path | None = None) -> dict[str, list[Parameter]]:
    """The parameter rows of ``parameters.csv`` by ``methodology@version``."""
    path = path or Path(str(resources.files("neutralize.accounts.methodologies") / PARAMETER_FILE))
    found: dict[str, list[Parameter]] = {}
    for number, row in enumerate(_rows(path), start=2):
        found.setdefault(f"{row['methodology']}@{row['version']}", []).append(_parameter(row, number))
    return found


def grid_parameters(catalogue: FactorCatalogue) -> list[Parameter]:
    """MEE/NBS grid factors (kg CO2 per kWh) for CN and each province, per year, as resolved by footprint."""
    out: list[Parameter] = []
    for row in default_resolutions(catalogue):
        if row.requested_set != "MEE-NBS" or row.type != "electricity" or not row.k2:
            continue
        if int(row.k2) not in GRID_YEARS or row.factor_set is None or row.factor_id is None:
            continue
        factor = catalogue.get(row.factor_set, row.factor_id)
        out.append(
            Parameter(
                name=GRID_EF,
                key=f"{row.k1}:{row.k2}",
                value=factor.value,
                unit="kg CO2 per kWh",
                status="published",
                source=f"{factor.source} ({factor.factor_set} {factor.factor_id})",
                source_url=factor.source_url or "",
                notes="; ".join(row.notes),
            )
        )
    return out


def _check_ipcc(ref: str, parameters: list[Parameter], catalogue: FactorCatalogue) -> None:
    check = IPCC_CHECKS.get(ref.split("@")[0])
    if check is None:
        return
    name, fuel = check
    factor = catalogue.get("IPCC-2006", f"{fuel}:co2_per_tj")
    kg_per_kg = factor.value * catalogue.ipcc_ncv_tj_per_gg[fuel] / 1_000_000
    packaged = next((p.value for p in parameters if p.name == name), None)
    if packaged != kg_per_kg:
        raise parameters_invalid(f"{ref}: {name} {packaged} differs from IPCC-2006 {fuel} ({kg_per_kg})")


def parameter_set(
    ref: str,
    *,
    overrides: Sequence[Parameter] = (),
    catalogue: FactorCatalogue | None = None,
    packaged: Mapping[str, list[Parameter]] | None = None,
) -> ParameterSet:
    """The parameters of ``ref`` (``id@version``), with ``overrides`` replacing rows by (name, key).

    An override brings its own provenance: a partner's measured empty-running rate is an
    assumption of that partner unless it cites a publication.
    """
    catalogue = catalogue or default_catalogue()
    packaged = packaged if packaged is not None else _packaged()
    if ref not in packaged:
        raise parameters_invalid(f"no parameters for {ref}")
    rows = list(packaged[ref])
    _check_ipcc(ref, rows, catalogue)
    if ref.startswith("nev_driving@"):
        rows += grid_parameters(catalogue)
    replaced = {(p.name, p.key): p for p in overrides}
    rows = [replaced.pop((p.name, p.key), p) for p in rows]
    if replaced:
        unknown = ", ".join(f"{name}[{key}]" for name, key in replaced)
        raise parameters_invalid(f"{ref} has no parameter {unknown} to override")
    methodology_id, version = ref.split("@", 1)
    return ParameterSet(methodology=methodology_id, version=version, parameters=tuple(rows))


@lru_cache(maxsize=1)
def _packaged() -> dict[str, list[Parameter]]:
    return packaged_parameters()


def load_book(
    *,
    choice: Mapping[Behaviour, str] | None = None,
    overrides: Mapping[str, Sequence[Parameter]] | None = None,
    catalogue: FactorCatalogue | None = None,
) -> Book:
    """The methodologies to credit with (defaults per behaviour unless ``choice`` names others), checked."""
    chosen = {**DEFAULT_FOR, **(choice or {})}
    overrides = overrides or {}
    methodologies = {}
    for behaviour, ref in chosen.items():
        found = methodology(ref)
        if found.behaviour is not behaviour:
            raise parameters_invalid(f"{ref} credits {found.behaviour}, not {behaviour}")
        parameters = parameter_set(ref, overrides=overrides.get(ref, ()), catalogue=catalogue)
        found.check(parameters)
        methodologies[behaviour] = (found, parameters)
    rules = parameter_set(RULES_REF, overrides=overrides.get(RULES_REF, ()), catalogue=catalogue)
    book = Book(methodologies=methodologies, rules=rules)
    coefficient_table(book)  # refuses values too fine for the batch engine's exact integer arithmetic
    return book


@lru_cache(maxsize=1)
def default_book() -> Book:
    """The shipped methodologies and rules, loaded once per process."""
    return load_book()
