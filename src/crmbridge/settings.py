"""crmbridge settings: environment variables ``CRMBRIDGE_…`` (nested with ``__``) and ``.env``.

The variable names in ``api-contracts.md`` section 1 are a contract (ops and outside test
harnesses point crmbridge at any endpoint with them): add settings freely, never rename those.
Every secret is a ``SecretStr``: it never appears in logs, errors, ``repr`` or ``config show``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmbridge.errors import ConfigError, ConfigProblem, Location

ENV_PREFIX = "CRMBRIDGE_"


class HubSpotSettings(BaseModel):
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    ca_bundle: Path | None = None
    #: Each pass stops this far in the past: search shows writes only after "a few moments".
    index_lag_s: float = Field(default=60.0, ge=0)
    page_size: int = Field(default=200, ge=1, le=200)
    #: Pace search calls ourselves: search has its own per-second limit and no headers.
    search_per_s: float = Field(default=4.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a loopback simulator)")
        return value.rstrip("/")


class SalesforceSettings(BaseModel):
    instance_url: str | None = None
    access_token: SecretStr | None = None
    #: OAuth 2.0 JWT bearer login (a connected app): new tokens whenever a session expires.
    login_url: str = "https://login.salesforce.com"
    consumer_key: str | None = None
    username: str | None = None
    private_key_file: Path | None = None
    api_version: str = "59.0"
    ca_bundle: Path | None = None
    batch_size: int = Field(default=200, ge=1, le=200)
    #: Share of the org's daily API budget left to humans and other integrations.
    reserve_fraction: float = Field(default=0.2, ge=0, lt=1)
    #: Lead assignment rules run on every upsert unless this is off (Sforce-Auto-Assign).
    auto_assign: bool = False
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=120.0, gt=0)

    @property
    def uses_jwt(self) -> bool:
        """True when the JWT bearer settings are all set (they replace ACCESS_TOKEN)."""
        return bool(self.consumer_key and self.username and self.private_key_file)

    @field_validator("instance_url", "login_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("https://"):
            raise ValueError("must start with https:// (Salesforce serves TLS only)")
        return value.rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        value = value.removeprefix("v")
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must look like 59.0") from None
        if number < 46.0:
            raise ValueError("sObject Collections upsert needs 46.0 or later; pin 52.0 or later")
        return value


class RetrySettings(BaseModel):
    max_attempts: int = Field(default=6, ge=1, le=20)
    max_wait_s: float = Field(default=60.0, gt=0)
    #: A single Retry-After longer than this stops the pass instead of blocking it.
    max_total_s: float = Field(default=300.0, gt=0)


class Settings(BaseSettings):
    """Everything crmbridge reads from the environment; see README "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    hubspot: HubSpotSettings = HubSpotSettings()
    salesforce: SalesforceSettings = SalesforceSettings()
    retry: RetrySettings = RetrySettings()
    state_url: str = "sqlite:///crmbridge.db"
    mappings_dir: Path = Path("./mappings")
    poll_interval_s: float = Field(default=300.0, gt=0)
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with every secret shown as ``**********``."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a wrong value becomes a ConfigError naming its variable and a hint."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = ENV_PREFIX + "__".join(str(part).upper() for part in error["loc"])
            problems.append(
                ConfigProblem(
                    Location(f"environment variable {variable}"),
                    error["msg"],
                    hint="set it in the environment or in .env; see README, Configuration",
                )
            )
        raise ConfigError(problems) from None
