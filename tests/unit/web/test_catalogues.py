"""The pages' catalogues: complete, reviewed, in step with the templates, and no text left out of them.

Run ``make translations`` after changing a page's words; these tests say what is still to do.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from neutralize.core.errors import ErrorCode
from neutralize.web.i18n import CATALOGUES, LANGUAGES, PROBLEM_TITLES, TERMS

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "src" / "neutralize" / "web" / "templates"
TRANSLATED = [code for code in LANGUAGES if code != "en"]  # English is the source language

# A translation may equal its English source only where the word is the same in that language:
# loanwords and cognates, spelled alike (compared without case).
SAME_IN = {
    "de": {
        "E-mail",
        "Hotel",
        "hotel",
        "Instrument",
        "Name",
        "Organisation",
        "Region",
        "Standard",
        "Status",
        "Status:",
        "status",
        "vegan",
        "bus",
        "restaurant",
        "integrator",
        "kg CO2e",
        "partner",
        "taxi",
        "version %(version)s",
    },
    "nl": {
        "Account",
        "Credits",
        "Factor",
        "Hotel",
        "hotel",
        "Instrument",
        "Labels",
        "Project",
        "Status",
        "Status:",
        "status",
        "buffer",
        "buffer %(percent)s %%",
        "bus",
        "dashboard",
        "integrator",
        "kg CO2e",
        "metro",
        "partner",
        "starter",
        "poster:",
        "restaurant",
        "taxi",
    },
    "zh": set(),
}
# What a template may show outside gettext: the brand, units, acronyms, example codes and the
# scenes' short address (/s/…).
LITERAL_WORDS = {
    "Neutralize",
    "API",
    "PDF",
    "PNG",
    "SVG",
    "kg",
    "CO",
    "e",
    "kWh",
    "km",
    "v",
    "ICVCM",
    "CCP",
    "CORSIA",
    "PEK",
    "CTU",
    "TFU",
    "CN",
    "SC",
    "tianfu",
    "forum",
    "s",
}
VISIBLE_ATTRIBUTES = {"placeholder", "title", "alt", "aria-label"}


def catalogue(language: str) -> Catalog:
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def extracted() -> set[str]:
    """The msgids ``make translations`` would extract today, with the same mapping file."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(str(ROOT), method_map, options_map)
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_is_translated_and_reviewed(language: str) -> None:
    entries = [m for m in catalogue(language) if m.id]
    assert len(entries) > 100
    untranslated = [m.id for m in entries if not m.string]
    fuzzy = [m.id for m in entries if m.fuzzy]
    copied = [
        m.id
        for m in entries
        if m.string
        and m.string.casefold() == str(m.id).casefold()
        and m.id not in SAME_IN.get(language, set())
    ]
    assert untranslated == [], f"{language}: not translated"
    assert fuzzy == [], f"{language}: marked fuzzy, to review"
    assert copied == [], f"{language}: English copied as the translation"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_their_placeholders(language: str) -> None:
    # Babel's checkers: a %(name)s missing or added, or a bare %, breaks the page at render time.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue(language).check()]
    assert problems == []


def test_the_allow_lists_name_only_strings_the_catalogues_have() -> None:
    for language, same in SAME_IN.items():
        ids = {m.id for m in catalogue(language) if m.id}
        assert same <= ids, f"{language}: {same - ids} no longer exist"


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_catalogues_are_in_step_with_the_pages(language: str) -> None:
    # A string marked but missing here, or kept after the page dropped it: run make translations.
    ids = {m.id for m in catalogue(language) if m.id}
    now = extracted()
    assert sorted(now - ids) == [], "marked in the pages but not in the catalogue"
    assert sorted(ids - now) == [], "in the catalogue but no longer in the pages"


def test_every_problem_code_and_every_term_has_a_catalogue_entry() -> None:
    assert set(PROBLEM_TITLES) == set(ErrorCode)
    ids = {m.id for m in catalogue("de") if m.id}
    assert set(PROBLEM_TITLES.values()) | set(TERMS.values()) <= ids


class VisibleText(HTMLParser):
    """The words a browser would show or read out from a template with its Jinja parts removed."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value:
                self._collect(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self._collect(data)

    def _collect(self, text: str) -> None:
        self.words += re.findall(r"[^\W\d_]+", text)


def words_outside_gettext(source: str) -> list[str]:
    without_trans = re.sub(r"{%-? *trans\b.*?endtrans *-?%}", " ", source, flags=re.DOTALL)
    without_jinja = re.sub(r"{{.*?}}|{%.*?%}|{#.*?#}", " ", without_trans, flags=re.DOTALL)
    parser = VisibleText()
    parser.feed(without_jinja)
    return [w for w in parser.words if w not in LITERAL_WORDS]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_templates_show_no_text_outside_gettext(template: str) -> None:
    assert words_outside_gettext((TEMPLATES / template).read_text("utf-8")) == []


def test_the_text_check_finds_what_it_looks_for() -> None:
    page = '<style>p { color: red }</style><p title="Hello">{{ _("Kept") }} Left out'
    page += " {% trans %}In{% endtrans %}</p>"
    assert words_outside_gettext(page) == ["Hello", "Left", "out"]
