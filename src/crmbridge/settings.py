"""crmbridge settings: environment variables ``CRMBRIDGE_…`` (nested with ``__``) and ``.env``.

The variable names in README "Configuration" (first table) are a contract: ops and outside test
harnesses point crmbridge at any endpoint with them. Add settings freely, never rename those.

Every value is checked when the settings load, so a wrong one stops crmbridge at start (exit 2,
the variable's name and a hint) instead of failing every pass as if it were an outage:

- Surrounding whitespace is removed from every text value (a token read with ``$(cat f)`` from
  a file with CRLF endings keeps its ``\\r``); a value that still holds a control character is
  refused. Secrets must also be ASCII (they travel in an HTTP header).
- Every secret is a ``SecretStr``: it never appears in logs, errors, ``repr`` or ``config show``,
  and an error about one names the variable, never the value.
- Numbers are finite and bounded (``inf`` seconds overflows a wait; ``1e12`` too).
- URLs have a scheme and a host; the Salesforce API version is written like ``59.0``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from crmbridge.errors import ConfigError, ConfigProblem, Location
from crmbridge.secret_files import secret_file_values
from crmbridge.text import has_unsafe_characters

ENV_PREFIX = "CRMBRIDGE_"
SECRET_FIELDS = frozenset({"access_token", "secret_key"})
#: REST versions are ``major.0``; Collections upsert needs 46.0
#: (docs/salesforce-api.md, "API versions").
MIN_API_VERSION = 46
_API_VERSION = re.compile(r"v?(\d{2,3})\.(\d)")
_ERROR_TYPE = "crmbridge_setting"
_DEFAULT_HINT = "set it in the environment or in .env; see README, Configuration"
_HINTS = {
    "finite_number": "write a plain number, e.g. 60",
    "float_parsing": "write a plain number, e.g. 60",
    "int_parsing": "write a whole number, e.g. 200",
    "greater_than": "see README, Configuration, for the range it takes",
    "greater_than_equal": "see README, Configuration, for the range it takes",
    "less_than": "see README, Configuration, for the range it takes",
    "less_than_equal": "see README, Configuration, for the range it takes",
}


def _refuse(message: str, hint: str) -> PydanticCustomError:
    """A validation error whose message and hint reach the admin as they are written."""
    return PydanticCustomError(_ERROR_TYPE, "{message}", {"message": message, "hint": hint})


def clean_setting(value: object, *, secret: bool) -> object:
    """Strip a text value (or a SecretStr's text); refuse control characters, and non-ASCII
    characters in a secret. Messages never quote the value."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str):
        return value
    text = text.strip()
    if has_unsafe_characters(text):
        raise _refuse(
            "contains a control character (a line break, a tab, an escape sequence …)"
            + (" inside the secret; its value is not shown" if secret else ""),
            "give the value alone on one line; if it came from a file with Windows (CRLF) "
            "line endings, convert the file to LF",
        )
    if secret and not text.isascii():
        raise _refuse(
            "contains a character that is not ASCII; its value is not shown",
            "tokens are plain ASCII: look for quotes or spaces pasted along with it",
        )
    return SecretStr(text) if isinstance(value, SecretStr) else text


def _check_url(value: str, schemes: tuple[str, ...], example: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        raise _refuse(
            f"must start with {' or '.join(s + '://' for s in schemes)}",
            f"e.g. {example}",
        )
    try:
        parts.port  # noqa: B018 - reading it validates it
    except ValueError:
        raise _refuse("the port after the host is not a number", f"e.g. {example}") from None
    host = parts.hostname
    if not host or any(ch.isspace() for ch in host):
        raise _refuse("has no usable host name", f"e.g. {example}")
    return value.rstrip("/")


def _seconds(default: float, *, le: float, ge: float | None = None) -> Any:
    """A finite duration in seconds, above 0 (or ``ge``) and at most ``le``."""
    if ge is None:
        return Field(default=default, gt=0, le=le, allow_inf_nan=False)
    return Field(default=default, ge=ge, le=le, allow_inf_nan=False)


class _Section(BaseModel):
    """A nested group of settings; every text value is cleaned before it is parsed."""

    @field_validator("*", mode="before")
    @classmethod
    def _clean(cls, value: object, info: ValidationInfo) -> object:
        return clean_setting(value, secret=info.field_name in SECRET_FIELDS)


class HubSpotSettings(_Section):
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    ca_bundle: Path | None = None
    #: Each pass stops this far in the past: search shows writes only after "a few moments".
    index_lag_s: float = _seconds(60.0, ge=0, le=3600)
    page_size: int = Field(default=200, ge=1, le=200)
    #: Pace search calls ourselves: search has its own per-second limit and no headers.
    search_per_s: float = Field(default=4.0, ge=0.1, le=1_000_000, allow_inf_nan=False)
    connect_timeout_s: float = _seconds(5.0, le=60)
    read_timeout_s: float = _seconds(30.0, le=600)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _check_url(value, ("https", "http"), "https://api.hubapi.com")


class SalesforceSettings(_Section):
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
    reserve_fraction: float = Field(default=0.2, ge=0, lt=1, allow_inf_nan=False)
    #: Lead assignment rules run on every upsert unless this is off (Sforce-Auto-Assign).
    auto_assign: bool = False
    connect_timeout_s: float = _seconds(5.0, le=60)
    #: A Collections upsert of 200 leads answers in seconds; Salesforce calls a request that
    #: runs 20 s "long" (docs/salesforce-api.md, "Limits").
    read_timeout_s: float = _seconds(60.0, le=600)

    @property
    def uses_jwt(self) -> bool:
        """True when the JWT bearer settings are all set (they replace ACCESS_TOKEN)."""
        return bool(self.consumer_key and self.username and self.private_key_file)

    @field_validator("instance_url", "login_url")
    @classmethod
    def _check_https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # simple-salesforce speaks https only (docs/salesforce-api.md, "simple-salesforce").
        return _check_url(value, ("https",), "https://acme.my.salesforce.com")

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        match = _API_VERSION.fullmatch(value)
        if match is None:
            hint = f"write {value}.0" if value.isdigit() else "write the REST version, e.g. 59.0"
            raise _refuse("must be a REST API version like 59.0", hint)
        if int(match.group(1)) < MIN_API_VERSION:
            raise _refuse(
                f"sObject Collections upsert needs {MIN_API_VERSION}.0 or later",
                "pin 52.0 or later (older versions are being retired)",
            )
        return f"{match.group(1)}.{match.group(2)}"


class RetrySettings(_Section):
    #: Only a far backstop: retrying is bounded by ``max_total_s`` first (``retry.py``).
    max_attempts: int = Field(default=100, ge=1, le=1000)
    max_wait_s: float = _seconds(60.0, le=3600)
    #: How long one call may keep retrying; a Retry-After longer than what is left of it
    #: stops the pass instead of blocking it.
    max_total_s: float = _seconds(300.0, le=3600)


class ConsoleSettings(_Section):
    """The reviewer console (`crmbridge console`, or beside `run` when ``enabled``)."""

    #: Serve the console from `crmbridge run` too.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: Session cookies only over HTTPS. Turn off only for plain http on loopback (or behind
    #: a TLS proxy on the same host).
    secure_cookies: bool = True
    #: Signs session cookies; unset, a random key per process (sessions end with it).
    secret_key: SecretStr | None = None
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30, allow_inf_nan=False)
    #: Whose reject log the console shows (one console per pipeline).
    pipeline: str = "default"


class HttpSettings(_Section):
    """Where ``crmbridge run`` serves /healthz, /readyz and /metrics."""

    #: False: ``run`` serves nothing.
    enabled: bool = True
    #: Loopback unless told otherwise (a container sets 0.0.0.0).
    host: str = "127.0.0.1"
    #: 0: any free port (the ``http_serving`` log line names it).
    port: int = Field(default=8080, ge=0, le=65535)


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
    console: ConsoleSettings = ConsoleSettings()
    http: HttpSettings = HttpSettings()
    state_url: str = "sqlite:///crmbridge.db"
    mappings_dir: Path = Path("./mappings")
    poll_interval_s: float = _seconds(300.0, le=86_400)
    #: After a stop request, how long a call already waiting for an answer may still finish
    #: before it is abandoned (its page is then not committed, and is repeated next pass).
    stop_grace_s: float = _seconds(10.0, ge=0, le=60)
    #: A pipeline's lease not renewed for this long may be taken over by a standby runner.
    lease_timeout_s: float = _seconds(30.0, ge=1, le=3600)
    #: Several pipelines, each with its own endpoints, map and state (``crmbridge.pipelines``).
    pipelines_file: Path | None = None
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("*", mode="before")
    @classmethod
    def _clean(cls, value: object, info: ValidationInfo) -> object:
        return clean_setting(value, secret=info.field_name in SECRET_FIELDS)

    def secret_values(self) -> list[str]:
        """The value of every secret setting that is set (to register for masking)."""
        tokens = (
            self.hubspot.access_token,
            self.salesforce.access_token,
            self.console.secret_key,
        )
        return [token.get_secret_value() for token in tokens if token is not None]

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with every secret shown as ``**********``."""
        return self.model_dump(mode="json")


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a wrong value becomes a ConfigError naming its variable and a hint.

    Neither the message nor the hint ever holds the value itself (it may be a secret).
    Secret settings may come from files (``CRMBRIDGE_…_FILE``, see ``secret_files``)."""
    try:
        return Settings(**{**secret_file_values(), **overrides})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = ENV_PREFIX + "__".join(str(part).upper() for part in error["loc"])
            context = error.get("ctx") or {}
            hint = context.get("hint") or _HINTS.get(error["type"], _DEFAULT_HINT)
            problems.append(
                ConfigProblem(
                    Location(f"environment variable {variable}"), error["msg"], hint=str(hint)
                )
            )
        raise ConfigError(problems) from None
