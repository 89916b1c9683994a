"""Mirrored credits: home registries' public data imported read-only, the platform's retirements at
home recorded here, and kilogram shares of those retirements allocated to buyers.

A home registry (Verra, Gold Standard, CCER, CDM) retires in whole tonnes and forbids re-selling
its units as new instruments. The platform retires whole tonnes there, records each retirement,
and allocates kilogram shares of it; the shares of one retirement never exceed its tonnes ×
1,000, and a Merkle root over its shares is published with it.

- ``imports``: a public export mirrored, all rows or nothing;
- ``blocks``: the mirrored blocks read, and checked against the import rule;
- ``home``: the platform's holdings, retirements and shares at home registries;
- ``schemas``: what callers send and get back.
"""

from neutralize.registry.mirror.blocks import (
    UNIT_ORDER,
    block_problems,
    find_home_serial,
    mirrored_blocks_of,
    remainder,
    sub_blocks,
)
from neutralize.registry.mirror.home import (
    allocate_share,
    holdings_at_home,
    home_retirement_public,
    home_retirements_of,
    record_holding,
    record_retirement,
    retirements_with_room,
    share_problems,
    unretired_stock_kg,
)
from neutralize.registry.mirror.imports import decode_export, import_export, parse_export
from neutralize.registry.mirror.schemas import (
    HomeHoldingCreate,
    HomeHoldingPublic,
    HomeRetirementCreate,
    HomeRetirementPublic,
    ImportReport,
    MirroredBlockPublic,
    ShareCreate,
    SharePublic,
)

__all__ = [
    "UNIT_ORDER",
    "HomeHoldingCreate",
    "HomeHoldingPublic",
    "HomeRetirementCreate",
    "HomeRetirementPublic",
    "ImportReport",
    "MirroredBlockPublic",
    "ShareCreate",
    "SharePublic",
    "allocate_share",
    "block_problems",
    "decode_export",
    "find_home_serial",
    "holdings_at_home",
    "home_retirement_public",
    "home_retirements_of",
    "import_export",
    "mirrored_blocks_of",
    "parse_export",
    "record_holding",
    "record_retirement",
    "remainder",
    "retirements_with_room",
    "share_problems",
    "sub_blocks",
    "unretired_stock_kg",
]
