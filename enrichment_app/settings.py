"""The one place that reads the environment.

Every setting has a sensible default so that ``reflex run`` works on a fresh clone with no
configuration at all: a SQLite file, the local job runner and the offline demo enrichers.
Secrets are ``SecretStr`` so they never show up in reprs or logs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from enrichment_app.edge.sites import parse_hosts, parse_origins
from enrichment_app.egress.policy import AllowedEntry, parse_allowed
from enrichment_app.errors import ConfigError
from enrichment_app.keyring import KEY_FILE_NAME, parse_keys
from enrichment_app.rate_limits import parse_rate

DEFAULT_DATABASE_URL = "sqlite:///.data/enrichment.db"
"""Under a hidden folder: Reflex's dev reloader watches every other file in the project root,
and SQLite's -wal/-shm files change on every write."""
DEFAULT_TRIGGER_API_URL = "https://api.trigger.dev"


class Settings(BaseSettings):
    """Application settings, read from the environment (and an optional ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
        hide_input_in_errors=True,  # a refused APP_SECRET_KEY must not be printed
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        description="Any SQLAlchemy URL; SQLite by default, PostgreSQL in production.",
    )
    max_cells_per_job: int = Field(
        default=100_000,
        gt=0,
        validation_alias=AliasChoices("MAX_CELLS_PER_JOB", "max_cells_per_job"),
        description="One job's cap: a whole column of a 100,000-row table is one Run.",
    )
    max_cell_chars: int = Field(
        default=10_000,
        gt=0,
        validation_alias=AliasChoices("MAX_CELL_CHARS", "max_cell_chars"),
        description="Cell values longer than this are truncated, on import, edit and enrichment.",
    )
    max_csv_bytes: int = Field(
        default=20 * 1024 * 1024,
        gt=0,
        validation_alias=AliasChoices("MAX_CSV_BYTES", "max_csv_bytes"),
    )
    table_refresh_seconds: float = Field(
        default=2.0,
        ge=0,
        validation_alias=AliasChoices("TABLE_REFRESH_SECONDS", "table_refresh_seconds"),
        description=(
            "The fallback: how often an open table polls the database for changes made"
            " elsewhere while the table change bus (or, in Trigger.dev mode, the table's"
            " Realtime feed) is unavailable; changes are pushed otherwise. 0 turns off"
            " following the idle table altogether."
        ),
    )
    table_change_bus: Literal["auto", "memory", "postgres", "redis"] = Field(
        default="auto",
        validation_alias=AliasChoices("TABLE_CHANGE_BUS", "table_change_bus"),
        description=(
            "How backend processes tell each other a table changed: auto picks redis when"
            " REFLEX_REDIS_URL is set, postgres (LISTEN/NOTIFY) on a PostgreSQL database,"
            " else memory (one process)."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REFLEX_REDIS_URL", "redis_url"),
        description="Reflex's Redis (its state manager); the table change bus uses it too.",
    )
    seed_demo: bool = Field(default=True, validation_alias=AliasChoices("SEED_DEMO", "seed_demo"))
    run_local_jobs: bool = Field(
        default=True,
        validation_alias=AliasChoices("RUN_LOCAL_JOBS", "run_local_jobs"),
        description="Whether this process runs (and resumes) local jobs in-process.",
    )

    llm_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=AliasChoices("LLM_BASE_URL", "OPENAI_BASE_URL", "llm_base_url"),
    )
    llm_model: str = Field(
        default="gpt-4o-mini", validation_alias=AliasChoices("LLM_MODEL", "llm_model")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key")
    )

    trigger_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TRIGGER_SECRET_KEY", "trigger_secret_key")
    )
    trigger_api_url: str = Field(
        default=DEFAULT_TRIGGER_API_URL,
        validation_alias=AliasChoices("TRIGGER_API_URL", "trigger_api_url"),
    )
    trigger_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("TRIGGER_TIMEOUT_SECONDS", "trigger_timeout_seconds"),
        description="How long one Trigger.dev API call may take before the client retries it.",
    )
    trigger_realtime_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices(
            "TRIGGER_REALTIME_TIMEOUT_SECONDS", "trigger_realtime_timeout_seconds"
        ),
        description=(
            "How long a Realtime long-poll may stay unanswered before the client reconnects;"
            " it must exceed the server's hold (20 s on Trigger.dev)."
        ),
    )
    trigger_realtime_give_up_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices(
            "TRIGGER_REALTIME_GIVE_UP_SECONDS", "trigger_realtime_give_up_seconds"
        ),
        description=(
            "How long Realtime may keep failing (5xx, 429, network) before the page stops"
            " waiting for it and follows the job by polling the database."
        ),
    )
    trigger_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias=AliasChoices("TRIGGER_SWEEP_SECONDS", "trigger_sweep_seconds"),
        description=(
            "How often each backend process asks Trigger.dev about unfinished jobs, to settle"
            " those whose run ended (crashed, timed out, canceled) while no tab watched it."
        ),
    )
    enrichment_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ENRICHMENT_API_KEY", "enrichment_api_key")
    )
    enricher_allowed_networks: str = Field(
        default="",
        validation_alias=AliasChoices("ENRICHER_ALLOWED_NETWORKS", "enricher_allowed_networks"),
        description=(
            "Internal addresses enrichers may reach, comma-separated: networks (10.0.0.0/8),"
            " addresses (10.1.2.3) or address:port (127.0.0.1:8080, [::1]:8080). Enrichers"
            " reach public addresses only otherwise (see enrichment_app/egress)."
        ),
    )
    app_secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("APP_SECRET_KEY", "app_secret_key"),
        description=(
            "Fernet key(s), comma-separated, newest first, that encrypt saved credentials;"
            " generated into the data folder when unset (see enrichment_app/keyring.py)."
        ),
    )

    session_idle_hours: float = Field(
        default=24.0,
        gt=0,
        validation_alias=AliasChoices("SESSION_IDLE_HOURS", "session_idle_hours"),
        description="A signed-in browser left idle this long must sign in again.",
    )
    session_max_days: float = Field(
        default=14.0,
        gt=0,
        validation_alias=AliasChoices("SESSION_MAX_DAYS", "session_max_days"),
        description="However active, a browser signs in again after this many days.",
    )
    login_failure_limit: int = Field(
        default=5,
        gt=0,
        validation_alias=AliasChoices("LOGIN_FAILURE_LIMIT", "login_failure_limit"),
        description=(
            "Failed sign-ins allowed per email in 15 minutes (four times as many per address)"
            " before sign-ins are refused for the rest of the window."
        ),
    )
    invitation_days: float = Field(
        default=7.0,
        gt=0,
        validation_alias=AliasChoices("INVITATION_DAYS", "invitation_days"),
        description="How long an invitation link stays valid (each works once).",
    )
    oidc_issuer: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OIDC_ISSUER", "oidc_issuer"),
        description="An OpenID Connect provider's issuer URL; turns on single sign-on.",
    )
    oidc_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("OIDC_CLIENT_ID", "oidc_client_id")
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OIDC_CLIENT_SECRET", "oidc_client_secret")
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        validation_alias=AliasChoices("OIDC_SCOPES", "oidc_scopes"),
    )
    oidc_label: str = Field(
        default="single sign-on",
        validation_alias=AliasChoices("OIDC_LABEL", "oidc_label"),
        description='The provider\'s name on the sign-in button ("Sign in with …").',
    )
    oidc_redirect_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OIDC_REDIRECT_URL", "oidc_redirect_url"),
        description=(
            "The callback URL registered at the provider; by default the backend's own"
            " /auth/oidc/callback as the browser reaches it."
        ),
    )
    allowed_origins: str = Field(
        default="",
        validation_alias=AliasChoices("ALLOWED_ORIGINS", "allowed_origins"),
        description=(
            "Origins, besides the app's own, whose pages may open the websocket, upload and"
            " call /api, comma-separated: https://app.example.com (see enrichment_app/edge)."
        ),
    )
    allowed_hosts: str = Field(
        default="",
        validation_alias=AliasChoices("ALLOWED_HOSTS", "allowed_hosts"),
        description=(
            "Host names, besides localhost and the hosts of REFLEX_API_URL, REFLEX_DEPLOY_URL"
            " and ALLOWED_ORIGINS, that requests may name in their Host header, comma-separated;"
            " *.example.com allows the subdomains."
        ),
    )
    api_rate_limit: str = Field(
        default="600/minute",
        validation_alias=AliasChoices("API_RATE_LIMIT", "api_rate_limit"),
        description="REST API calls per client (API key, else address): N/second|minute|hour.",
    )
    job_start_rate_limit: str = Field(
        default="60/minute",
        validation_alias=AliasChoices("JOB_START_RATE_LIMIT", "job_start_rate_limit"),
        description="Jobs one client (API key or address, or browser tab) may start.",
    )
    max_cells_per_day: int = Field(
        default=100_000,
        gt=0,
        validation_alias=AliasChoices("MAX_CELLS_PER_DAY", "max_cells_per_day"),
        description="Cells all jobs may queue per UTC day, counted in the database.",
    )
    max_config_bytes: int = Field(
        default=16 * 1024,
        gt=0,
        validation_alias=AliasChoices("MAX_CONFIG_BYTES", "max_config_bytes"),
        description="The largest enrichment column config, as JSON.",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _check_allowed_origins(cls, value: str) -> str:
        try:
            parse_origins(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: str) -> str:
        try:
            parse_hosts(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("api_rate_limit", "job_start_rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("enricher_allowed_networks")
    @classmethod
    def _check_allowed_networks(cls, value: str) -> str:
        try:
            parse_allowed(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("app_secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_keys(value.get_secret_value())
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_url(cls, value: str) -> str:
        """Accept the ``postgres://`` and ``postgresql://`` forms hosting providers hand out."""
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        return value

    @property
    def enricher_allowed(self) -> tuple[AllowedEntry, ...]:
        """``ENRICHER_ALLOWED_NETWORKS``, parsed (it was checked when the settings were read)."""
        return parse_allowed(self.enricher_allowed_networks)

    @property
    def data_dir(self) -> Path:
        """Where the app keeps its files: the SQLite file's folder, else ``.data``."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            path = self.database_url.removeprefix(prefix).split("?", 1)[0]
            if path and path != ":memory:":
                return Path(path).parent
        return Path(".data")

    @property
    def secret_key_file(self) -> Path:
        """The generated key's file, used when ``APP_SECRET_KEY`` is unset."""
        return self.data_dir / KEY_FILE_NAME

    @property
    def oidc_enabled(self) -> bool:
        """Single sign-on is offered exactly when the issuer and the client id are set."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def trigger_enabled(self) -> bool:
        """Trigger.dev mode is on exactly when a secret key is configured."""
        return self.trigger_secret_key is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()
