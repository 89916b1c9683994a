"""Serial grammars: what each accepted form yields, and what is refused."""

from __future__ import annotations

from datetime import date

import pytest

from neutralize.registry.importers.records import SerialForm
from neutralize.registry.importers.serials import SerialError, parse_gs_serial, parse_vcs_serial


def test_a_current_verra_serial_is_read_field_by_field() -> None:
    # Given a 13-field Verra serial
    text = "19380-941382555-941382741-VCS-VCU-1310-VER-CN-13-3005-01012022-31102022-0"

    # When it is parsed
    serial = parse_vcs_serial(text)

    # Then range, space, country, project and vintage are read
    assert serial.form is SerialForm.VCS_13
    assert (serial.first_unit, serial.last_unit, serial.quantity) == (941382555, 941382741, 187)
    assert (serial.unit_space, serial.country, serial.project_id) == ("VCS-VER", "CN", "3005")
    assert (serial.vintage_start, serial.vintage_end) == (date(2022, 1, 1), date(2022, 10, 31))


def test_an_older_verra_serial_without_the_programme_field_is_read() -> None:
    # Given the 12-field form quoted by stellarcarbon/sc-audit
    # When it is parsed
    serial = parse_vcs_serial("8040-449402275-449402275-VCU-042-MER-PE-14-1360-01072013-30062014-1")

    # Then it is the 12-field form in the MER space
    assert (serial.form, serial.unit_space, serial.project_id) == (SerialForm.VCS_12, "VCS-MER", "1360")
    assert serial.quantity == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020",  # no flag
        "0001-000001-000100-VCS-VCU-003-VER-US-0003-01012020-31122020-1",  # no sectoral scope field
        "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-O",  # letter O flag
        "19385-941467007-941467431-VCS-VCU-1507-VER-ETH-14-1340-01012020-31122020-1",  # 3-letter country
        "19385-941467007-941467431-GS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",  # wrong programme
        "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-32012020-31122020-1",  # 32 January
        "19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012021-31122020-1",  # vintage reversed
        "19385-941467431-941467007-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",  # range reversed
        "19385-0-10-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",  # unit 0
        " 19385-941467007-941467431-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",  # stray space
    ],
)
def test_malformed_verra_serials_are_refused(text: str) -> None:
    # Given a string that is not a valid Verra serial
    # When it is parsed
    # Then it is refused
    with pytest.raises(SerialError):
        parse_vcs_serial(text)


def test_a_gold_standard_serial_is_read_field_by_field() -> None:
    # Given a Gold Standard serial
    # When it is parsed
    serial = parse_gs_serial("GS1-1-UG-GS11236-16-2024-30307-1-19149")

    # Then the range is within the issuance batch named by the fields before it
    assert serial.form is SerialForm.GS
    assert serial.unit_space == "GS1-1-UG-GS11236-16-2024-30307"
    assert (serial.first_unit, serial.last_unit, serial.quantity) == (1, 19149, 19149)
    assert (serial.country, serial.project_id, serial.vintage_year) == ("UG", "11236", 2024)


@pytest.mark.parametrize(
    ("text", "form", "space", "first", "last", "project"),
    [
        ("CN-5-1001-2000-2-2-0-1234", SerialForm.CDM_BLOCK, "CDM-CN-5", 1001, 2000, "1234"),
        ("CN-5-1001-2-2-0-1234 - CN-5-2000-2-2-0-1234", SerialForm.CDM_PAIR, "CDM-CN-5", 1001, 2000, "1234"),
        ("IN-5-7-1-2-0-88 to IN-5-7-1-2-0-88", SerialForm.CDM_PAIR, "CDM-IN-5", 7, 7, "88"),
    ],
)
def test_kyoto_cdm_ranges_are_read(
    text: str, form: SerialForm, space: str, first: int, last: int, project: str
) -> None:
    # Given a CDM unit range in block or pair shape
    # When it is parsed as a Gold Standard serial
    serial = parse_gs_serial(text)

    # Then the range and the CDM project are read
    assert (serial.form, serial.unit_space, serial.first_unit, serial.last_unit, serial.project_id) == (
        form,
        space,
        first,
        last,
        project,
    )


@pytest.mark.parametrize(
    "text",
    [
        "GS1-1-UG-GS11236-16-2024-30307",  # no range
        "GS1-1-UG-GS11236-16-2024-30307-19149-1",  # reversed
        "GS1-1-UG-11236-16-2024-30307-1-19149",  # project without GS
        "GS1-1-UG-GS11236-16-24-30307-1-19149",  # two-digit year
        "CN-5-1001-2-2-0-1234 - CN-5-2000-2-2-0-9999",  # ends name different projects
        "CN-5-1001-2-2-0-1234 - IN-5-2000-2-2-0-1234",  # ends name different parties
        "CN-5-2000-2-2-0-1234 - CN-5-1001-2-2-0-1234",  # pair reversed
        "GS1-1-UG-GS11236-16-2024-30307-1-" + "9" * 300,  # too long
    ],
)
def test_malformed_gold_standard_serials_are_refused(text: str) -> None:
    # Given a string that is neither a Gold Standard serial nor a CDM range
    # When it is parsed
    # Then it is refused
    with pytest.raises(SerialError):
        parse_gs_serial(text)
