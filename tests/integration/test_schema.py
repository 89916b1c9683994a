"""The migrations build exactly the tables the models describe, on each database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import neutralize.access.models
import neutralize.certificates.models
import neutralize.footprint.models
import neutralize.market.models
import neutralize.registry.models
import neutralize.scenes.models  # noqa: F401  (each import registers its tables)
from neutralize.core.db import Base


def test_the_migrated_database_matches_the_models(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
