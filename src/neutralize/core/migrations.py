"""Run the Alembic migrations that ship with the project."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from neutralize.core.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(settings: Settings) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database at ``settings.database_url`` to ``revision``."""
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings), revision)
