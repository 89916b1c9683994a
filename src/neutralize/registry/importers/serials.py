"""The serial grammars of the registries we mirror, and what each field of a serial says.

Neither Verra nor Gold Standard publishes a field-by-field specification in its exports; the readings
below are taken from public sources and checked against published rows.

Verra VCS, current form, 13 fields::

    19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1
    batch-first-last-VCS-VCU-<vvb>-<registry>-<country>-<sectoral scope>-<project>-<start>-<end>-<flag>

Verra VCS, older form, 12 fields, without the ``VCS`` programme field (registry ``MER`` was the
Markit-era registry)::

    8040-449402275-449402275-VCU-042-MER-PE-14-1360-01072013-30062014-1

Field names follow ``VcsSerialNumber`` in stellarcarbon/sc-audit (``sc_audit/loader/utils.py``),
which parses both forms (batch number, block start/end, programme code, credit type, VVB id, registry,
country, project type, project id, vintage start/end as DDMMYYYY, additional-certification flag).
The 13-field form matches every row of the Verra export sample in carbonplan/offsets-db-data
(``tests/data/verra/transactions.csv``): the flag is 1 exactly on rows with Additional Certifications,
and the 9th field follows the project's sectoral scope (14 AFOLU, 1 energy industries, 3 energy
demand). Verra numbers units in one registry-wide sequence, so the unit space is the registry code.

Gold Standard, 9 fields::

    GS1-1-UG-GS11236-16-2024-30307-1-19149
    GS1-1-<country>-GS<project>-<project type code>-<vintage year>-<issuance batch>-<first>-<last>

Read from the Gold Standard issuance and retirement samples in carbonplan/offsets-db-data
(``tests/data/gold-standard/``): the project field equals GSID, the 5th field follows Project Type
(16 Energy Efficiency - Domestic, 12 Wind, 2 Solar Thermal - Electricity), the year equals Vintage,
and a retirement shares the batch field of the issuance it came from while its units are numbered
from 1 within that batch (issuance ``…-30256-1-5485``, later retirement ``…-30256-110-5463``). So the
unit space is everything before the range. Older (Markit-era) Gold Standard serials such as
``GS1-1-IN-GS1234-12-2014-4512-1-1000`` have the same shape.

Kyoto/CDM units (CERs a Gold Standard export may list) — NOT confirmed against a published export;
accepted in two shapes built from the Kyoto data exchange standard's unit-block fields (originating
party, unit type, first and last serial, original and applicable commitment period, LULUCF activity,
project id)::

    CN-5-1001-2000-2-2-0-1234                          (block: both ends in one string)
    CN-5-1001-2-2-0-1234 - CN-5-2000-2-2-0-1234        (pair: first and last unit ids; " to " works too)

The two ends of a pair must agree on every field but the serial. Units are numbered per originating
party and unit type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from neutralize.registry.importers.records import SerialForm

MAX_SERIAL_CHARS = 200
VCS_EXAMPLE = "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1"
GS_EXAMPLE = "GS1-1-UG-GS11236-16-2024-30307-1-19149"

_N = r"\d{1,12}"
_VCS = re.compile(
    rf"^(?P<batch>{_N})-(?P<first>{_N})-(?P<last>{_N})-(?P<programme>VCS-)?VCU-(?P<vvb>{_N})"
    rf"-(?P<registry>[A-Z]{{3}})-(?P<country>[A-Z]{{2}})-(?P<scope>{_N})-(?P<project>{_N})"
    r"-(?P<start>\d{8})-(?P<end>\d{8})-(?P<flag>[01])$"
)
_GS = re.compile(
    rf"^(?P<space>(?P<registry>GS\d{{1,3}})-(?P<unit>{_N})-(?P<country>[A-Z]{{2}})-GS(?P<project>{_N})"
    rf"-(?P<type>{_N})-(?P<year>\d{{4}})-(?P<batch>{_N}))-(?P<first>{_N})-(?P<last>{_N})$"
)
_CDM_BLOCK = re.compile(
    rf"^(?P<party>[A-Z]{{2}})-(?P<unit>\d{{1,2}})-(?P<first>{_N})-(?P<last>{_N})"
    rf"-(?P<ocp>\d)-(?P<acp>\d)-(?P<lulucf>{_N})-(?P<project>{_N})$"
)
_CDM_UNIT = rf"[A-Z]{{2}}-\d{{1,2}}-{_N}-\d-\d-{_N}-{_N}"
_CDM_PAIR = re.compile(rf"^(?P<a>{_CDM_UNIT})\s+(?:-|to)\s+(?P<b>{_CDM_UNIT})$")


class SerialError(ValueError):
    """A serial that matches no accepted grammar, or whose fields contradict each other."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class SerialRange:
    """What a serial says: its unit range and the project, country and vintage it names."""

    form: SerialForm
    unit_space: str
    first_unit: int
    last_unit: int
    country: str
    project_id: str  # the programme's project id (for CDM forms, the CDM project number)
    vintage_start: date | None = None  # Verra forms
    vintage_end: date | None = None
    vintage_year: int | None = None  # Gold Standard form

    @property
    def quantity(self) -> int:
        return self.last_unit - self.first_unit + 1


def parse_vcs_serial(text: str) -> SerialRange:
    """Read a Verra serial, 13-field or older 12-field form; ``SerialError`` if it is neither."""
    match = _VCS.match(text) if len(text) <= MAX_SERIAL_CHARS else None
    if match is None:
        raise SerialError("not a Verra VCU serial", f"e.g. {VCS_EXAMPLE}")
    start = _ddmmyyyy(match["start"])
    end = _ddmmyyyy(match["end"])
    if end < start:
        raise SerialError("the serial's vintage ends before it starts")
    return _checked(
        SerialRange(
            form=SerialForm.VCS_13 if match["programme"] else SerialForm.VCS_12,
            unit_space=f"VCS-{match['registry']}",
            first_unit=int(match["first"]),
            last_unit=int(match["last"]),
            country=match["country"],
            project_id=str(int(match["project"])),
            vintage_start=start,
            vintage_end=end,
        )
    )


def parse_gs_serial(text: str) -> SerialRange:
    """Read a Gold Standard serial, or a Kyoto/CDM unit range; ``SerialError`` if it is none of them."""
    if len(text) > MAX_SERIAL_CHARS:
        raise SerialError(f"the serial is longer than {MAX_SERIAL_CHARS} characters")
    native = _GS.match(text)
    if native:
        return _checked(
            SerialRange(
                form=SerialForm.GS,
                unit_space=native["space"],
                first_unit=int(native["first"]),
                last_unit=int(native["last"]),
                country=native["country"],
                project_id=str(int(native["project"])),
                vintage_year=int(native["year"]),
            )
        )
    if _CDM_BLOCK.match(text) or _CDM_PAIR.match(text):
        return parse_cdm_serial(text)
    raise SerialError("not a Gold Standard or CDM serial", f"e.g. {GS_EXAMPLE}")


def parse_cdm_serial(text: str) -> SerialRange:
    """Read a Kyoto/CDM unit range in block or pair shape (an unconfirmed reading, see above)."""
    block = _CDM_BLOCK.match(text)
    if block:
        party, unit, first, last = block["party"], block["unit"], block["first"], block["last"]
        project, form = block["project"], SerialForm.CDM_BLOCK
    else:
        pair = _CDM_PAIR.match(text)
        if pair is None:
            raise SerialError("not a CDM unit range", "e.g. CN-5-1001-2000-2-2-0-1234")
        a, b = pair["a"].split("-"), pair["b"].split("-")
        if a[:2] + a[3:] != b[:2] + b[3:]:
            raise SerialError("the first and last unit ids of the range differ in more than the serial")
        party, unit, first, last, project, form = a[0], a[1], a[2], b[2], a[6], SerialForm.CDM_PAIR
    return _checked(
        SerialRange(
            form=form,
            unit_space=f"CDM-{party}-{int(unit)}",
            first_unit=int(first),
            last_unit=int(last),
            country=party,
            project_id=str(int(project)),
        )
    )


def _checked(serial: SerialRange) -> SerialRange:
    if serial.first_unit < 1:
        raise SerialError("the serial's first unit is 0", "unit numbers start at 1")
    if serial.last_unit < serial.first_unit:
        raise SerialError("the serial's last unit is before its first unit")
    return serial


def _ddmmyyyy(text: str) -> date:
    try:
        return date(int(text[4:]), int(text[2:4]), int(text[:2]))
    except ValueError:
        raise SerialError(f"the serial's vintage date {text} is not a date", "DDMMYYYY") from None
