"""Versioned methodologies: the parameters they read and the formulas that turn a record into grams.

A methodology is code (the formulas in ``formulas``) plus a parameter set with provenance
(``parameters.csv`` in this folder, loaded by ``accounts.catalogue``). Each parameter says whether
it is a published figure or an assumption of this project, and where it comes from. A result
names the methodology, its version and the SHA-256 of its parameter set, so that it can be
recomputed; changing any value, unit, status or source changes the hash.

Everything here is pure: values are exact ``Fraction``s made from the decimal text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property

from neutralize.core.errors import DomainError, ErrorCode

PUBLISHED = "published"
ASSUMPTION = "assumption"
STATUSES = (PUBLISHED, ASSUMPTION)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One value a methodology reads, with its provenance; ``key`` selects a mode, class or region."""

    name: str
    key: str
    value: Decimal
    unit: str
    status: str
    source: str
    source_url: str = ""
    notes: str = ""

    def canonical(self) -> dict[str, str]:
        return {
            "name": self.name,
            "key": self.key,
            "value": str(self.value),
            "unit": self.unit,
            "status": self.status,
            "source": self.source,
            "source_url": self.source_url,
        }


@dataclass(frozen=True)
class ParameterSet:
    """The parameters of one methodology version, as one hashable, citable unit."""

    methodology: str
    version: str
    parameters: tuple[Parameter, ...]
    _index: dict[tuple[str, str], Parameter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, str], Parameter] = {}
        for parameter in self.parameters:
            if (parameter.name, parameter.key) in index:
                raise parameters_invalid(f"{self.ref}: {parameter.name}[{parameter.key}] is given twice")
            if parameter.status not in STATUSES:
                raise parameters_invalid(f"{self.ref}: {parameter.name} has status {parameter.status!r}")
            index[(parameter.name, parameter.key)] = parameter
        object.__setattr__(self, "_index", index)

    @property
    def ref(self) -> str:
        return f"{self.methodology}@{self.version}"

    def value(self, name: str, key: str = "") -> Fraction:
        """The exact value of ``name`` for ``key``; raises if the set lacks it."""
        found = self._index.get((name, key))
        if found is None:
            raise parameters_invalid(f"{self.ref} lacks {name}" + (f"[{key}]" if key else ""))
        return Fraction(found.value)

    def find(self, name: str, key: str = "") -> Fraction | None:
        found = self._index.get((name, key))
        return None if found is None else Fraction(found.value)

    def keys(self, name: str) -> tuple[str, ...]:
        return tuple(sorted(p.key for p in self.parameters if p.name == name))

    @cached_property
    def sha256(self) -> str:
        """Hash of the canonical JSON of every parameter, in a fixed order."""
        rows = sorted((p.canonical() for p in self.parameters), key=lambda r: (r["name"], r["key"]))
        text = json.dumps(
            {"methodology": self.methodology, "version": self.version, "parameters": rows},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(text.encode()).hexdigest()


def parameters_invalid(message: str) -> DomainError:
    return DomainError(code=ErrorCode.METHODOLOGY_PARAMETERS_INVALID, message=message)
