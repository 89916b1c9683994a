"""One place for settings: environment variables prefixed ``NEUTRALIZE_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/neutralize.db"


class Settings(BaseSettings):
    """Platform settings; build one per process with ``get_settings()`` or pass your own."""

    model_config = SettingsConfigDict(env_prefix="NEUTRALIZE_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Limits on request bodies: JSON requests, and uploaded batch files.
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1_024)
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1_024)
    # Ed25519 signing keys: a key ring in a directory, or one fixed key from a file or the environment
    # (base64 of the 32-byte raw private key). At most one of the last two may be set.
    signing_key_dir: Path = Path("./var/keys")
    signing_key_file: Path | None = None
    signing_key: SecretStr | None = None
    # Signs password-reset links; a fixed, public one outside production (production refuses that).
    secret_key: SecretStr | None = None
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Rate limits: sign-ups per client address an hour; sign-in attempts per e-mail address (and ten
    # times as many per client address) in 15 minutes; orders per client address a minute.
    signups_per_hour: int = Field(default=20, ge=1)
    logins_per_quarter_hour: int = Field(default=10, ge=1)
    orders_per_minute: int = Field(default=30, ge=1)
    # The address the platform is reached at: certificates' QR codes point here.
    public_url: str = "http://127.0.0.1:8000"
    # Market: what quotes cost and how long they and reservations last.
    default_currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    platform_fee_bp: int = Field(default=800, ge=0, le=5_000)
    platform_fee_min_minor: int = Field(default=100, ge=0)
    tax_bp: int = Field(default=600, ge=0, le=5_000)
    quote_ttl_seconds: int = Field(default=900, ge=10)
    reservation_ttl_seconds: int = Field(default=1_800, ge=10)
    pending_share_alert_days: int = Field(default=30, ge=1)
    # How often each app process voids stale reservations and allocates waiting shares (0: never;
    # then run ``neutralize market reconcile`` from cron instead).
    market_jobs_seconds: int = Field(default=60, ge=0)
    # How often leaderboard ranks are computed again (about 12 s of database work at a million
    # participants; one process at a time does it).
    ranks_refresh_seconds: int = Field(default=300, ge=10)
    # An event offsets its footprint within this many months after its last day (MEE guidelines:
    # in principle within one year); organisers are reminded 90, 30 and 7 days before.
    event_offset_deadline_months: int = Field(default=12, ge=1, le=60)
    # Payment gateways on offer (the first is the default), and their secrets. The sandbox is a
    # simulation for the demo and tests: production refuses to start with it.
    payment_gateways: list[Literal["sandbox", "offline"]] = ["sandbox", "offline"]
    sandbox_webhook_secret: SecretStr | None = None
    sandbox_fee_bp: int = Field(default=60, ge=0, le=1_000)
    offline_payee: str = "Neutralize platform account (bank details on the invoice)"

    def link_secret(self) -> bytes:
        """The key that signs password-reset links."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode("utf-8")
        if self.environment == "production":
            raise ValueError("NEUTRALIZE_SECRET_KEY must be set in production")
        return b"development-secret-not-for-production"

    def sandbox_secret(self) -> str:
        """The sandbox gateway's webhook secret (the sandbox never runs in production)."""
        if self.sandbox_webhook_secret is not None:
            return self.sandbox_webhook_secret.get_secret_value()
        return "sandbox-development-secret-not-for-production"

    @model_validator(mode="after")
    def _no_simulated_money_in_production(self) -> Settings:
        if self.environment == "production" and "sandbox" in self.payment_gateways:
            raise ValueError(
                "the sandbox gateway simulates payments: "
                "leave it out of NEUTRALIZE_PAYMENT_GATEWAYS in production"
            )
        if not self.payment_gateways:
            raise ValueError("NEUTRALIZE_PAYMENT_GATEWAYS needs at least one gateway")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite URL, else ``None``."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        path = self.database_url[len(prefix) :]
        return None if path in ("", ":memory:") else Path(path)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
