"""Pure parsers for public registry exports (Verra VCS, Gold Standard): text in, typed records out.

No database, files or clock here: callers pass the export's text and persist the ``ImportResult``.
"""

from neutralize.registry.importers.duplicates import cross_programme_duplicates
from neutralize.registry.importers.gold_standard import parse_gold_standard_export
from neutralize.registry.importers.records import (
    BlockStatus,
    ImportedBlock,
    ImportedProject,
    ImportResult,
    Programme,
    SerialForm,
)
from neutralize.registry.importers.verra import parse_verra_export

__all__ = [
    "BlockStatus",
    "ImportResult",
    "ImportedBlock",
    "ImportedProject",
    "Programme",
    "SerialForm",
    "cross_programme_duplicates",
    "parse_gold_standard_export",
    "parse_verra_export",
]
