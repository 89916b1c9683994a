"""Logging set-up for the processes the platform starts (server, CLI)."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    """One format for every process; idempotent."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
