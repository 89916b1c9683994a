"""Settings that refuse what would be unsafe in production."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from neutralize.core.config import Settings


def test_production_refuses_the_simulated_payment_gateway() -> None:
    with pytest.raises(ValidationError, match="sandbox"):
        Settings(environment="production")
    assert Settings(environment="production", payment_gateways=["offline"]).payment_gateways == ["offline"]
    assert "sandbox" in Settings(environment="development").payment_gateways


def test_production_needs_its_own_secret_for_reset_links() -> None:
    production = Settings(environment="production", payment_gateways=["offline"])
    with pytest.raises(ValueError, match="NEUTRALIZE_SECRET_KEY"):
        production.link_secret()
    keyed = production.model_copy(update={"secret_key": SecretStr("s" * 40)})
    assert keyed.link_secret() == b"s" * 40


def test_at_least_one_gateway() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        Settings(payment_gateways=[])
