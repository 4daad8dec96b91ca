"""The hub's settings: one pydantic-settings class, read from `HUB_*` environment variables.

Nothing reads settings from a global: `create_app(settings)` receives them, so tests build
apps with their own database and upstream configuration.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from hub.core.proxy import ProxyRules

DEFAULT_SECRET = "insecure-development-secret-change-me"

#: Names a directory of secret files; otherwise /run/secrets is read when it exists.
SECRETS_DIR_VARIABLE = "HUB_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")


def secrets_dir() -> Path | None:
    """The directory of secret files: `HUB_SECRETS_DIR`, else `/run/secrets` (Docker and
    Kubernetes mount secrets there) when it exists. None when there is none to read (a
    `HUB_SECRETS_DIR` that is not a directory is refused by `Settings.check`)."""
    configured = os.environ.get(SECRETS_DIR_VARIABLE)
    path = Path(configured) if configured else DEFAULT_SECRETS_DIR
    return path if path.is_dir() else None


def sources_with_secret_files(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Where a settings class reads its values, first found wins: arguments, then the
    environment (`HUB_…`; a .env file where a class names one), then a file named like the
    variable in the secrets directory (`/run/secrets/HUB_SECRET_KEY`,
    `…/HUB_POPULATION_SECRET`; surrounding whitespace stripped), then the default. The hub's
    settings and every adapter's read this way."""
    directory = secrets_dir()
    if directory is None:
        return init_settings, env_settings, dotenv_settings
    files = SecretsSettingsSource(settings_cls, secrets_dir=directory)
    return init_settings, env_settings, dotenv_settings, files


class SecretFileSettings(BaseSettings):
    """Base of the hub's settings classes (its own and every adapter's): values come from
    the arguments, the environment, then the secrets directory (sources_with_secret_files)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return sources_with_secret_files(settings_cls, init_settings, env_settings, dotenv_settings)


class Settings(SecretFileSettings):
    """Hub settings. Every field is settable as `HUB_<FIELD>` (e.g. `HUB_DATABASE_URL`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=None, extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses to start without a real HUB_SECRET_KEY (32+ "
        "characters) or with an adapter secret still at the mocks' default, and turns on the "
        "production defaults (JSON logs, https and public callbacks only, no migrations at "
        "start-up).",
    )
    database_url: str = Field(
        "sqlite:///hub.db",
        repr=False,  # may carry a password
        description="SQLAlchemy URL; SQLite file in the working directory by default. "
        "postgresql://… (psycopg 3) for production.",
    )
    redis_url: str | None = Field(
        None,
        repr=False,  # may carry a password
        description="Redis for state shared by every hub process (rate limits, circuits).",
    )
    redis_prefix: str = Field(
        "hub:", description="Prefix of the hub's keys in Redis (two deployments on one Redis)."
    )
    redis_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Redis: longest wait to connect, and for each answer; no retries. While "
        "Redis fails, rate limits are counted in process memory and Redis is tried again "
        "after a back-off (1 s, doubling to 30 s).",
    )
    rate_limit_per_minute: int | None = Field(
        None, ge=1, description="Calls a minute the whole hub takes (None: no global limit)."
    )
    data_key: SecretStr | None = Field(
        None,
        description="Fernet key(s), comma-separated, sealing certificates and webhook payloads "
        "at rest (None: derived from HUB_SECRET_KEY); hub.core.sealed.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token a Prometheus scrape of /metrics from outside "
        "HUB_METRICS_NETWORKS must send (None: only those networks are served).",
    )
    metrics_networks: list[str] = Field(
        ["127.0.0.0/8", "::1/128"],
        description="Client networks served /metrics without the token (CIDR; default loopback).",
    )
    # Verifications (population:verify) are throttled and watched: hub.security.verification.
    verify_per_subject: int = Field(
        5, ge=0, description="Verifications of one person by one client a subject window (0: off)."
    )
    verify_subject_window_s: float = Field(
        86_400, gt=0, description="The window of HUB_VERIFY_PER_SUBJECT and the mismatch alert."
    )
    verify_per_minute: int = Field(
        120, ge=0, description="Verifications by one client in any 60 s (0: no such throttle)."
    )
    verify_mismatch_alert: int = Field(
        3, ge=0, description="No-match verifications of one person by one client that alert."
    )
    secret_key: SecretStr = Field(
        SecretStr(DEFAULT_SECRET),
        description="Server secret: keys API-key hashes and log pseudonyms.",
    )
    log_format: Literal["json", "text"] | None = Field(
        None,
        description="Log lines as JSON objects or plain text (default: JSON in production, "
        "text in development).",
    )
    shutdown_grace_s: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long `hub serve` waits for requests in flight to finish "
        "before cancelling them and stopping.",
    )

    upstream_timeout_s: float = Field(10.0, gt=0, description="Per-attempt upstream timeout.")
    upstream_connect_timeout_s: float = Field(
        3.0, gt=0, description="Connecting to an upstream (an adapter's own setting overrides it)."
    )
    retry_attempts: int = Field(3, ge=1, le=10, description="Attempts for idempotent calls.")
    retry_deadline_s: float = Field(15.0, gt=0, description="Total time budget for one call.")
    retry_initial_backoff_s: float = Field(
        0.05, ge=0, description="First pause between retries (exponential, full jitter)."
    )
    retry_max_backoff_s: float = Field(1.0, ge=0, description="Longest pause between retries.")
    http_transport: Literal["http1", "aiohttp", "httpx"] = Field(
        "http1",
        description="Upstream HTTP client: the hub's lean HTTP/1.1 client (hub/core/http1.py), "
        "aiohttp's, or httpx's own pool; measured in that order from fastest "
        "(docs/design/benchmark.md).",
    )
    upstream_proxy: str | None = Field(
        None,
        repr=False,  # may carry the proxy's password
        description="The forward proxy every upstream call goes through, e.g. "
        "http://proxy.example.gov.vn:3128 (credentials as http://user:password@…). Unset: "
        "HTTP_PROXY / HTTPS_PROXY / ALL_PROXY. NO_PROXY exempts upstreams either way "
        "(hub/core/proxy.py). A proxied upstream goes through httpx's pool.",
    )
    upstream_max_connections: int = Field(
        256, ge=1, description="Keep-alive connections to one upstream per process, at most."
    )
    upstream_max_concurrent: int = Field(
        100,
        ge=1,
        description="Bulkhead: calls in flight to one upstream per process; more get a fast "
        "503 (an adapter's HUB_<NAME>_MAX_CONCURRENT overrides it).",
    )
    circuit_window_s: float = Field(30.0, gt=0, description="Circuit breaker: the window judged.")
    circuit_min_calls: int = Field(
        10, ge=1, description="Circuit breaker: calls in the window before it may open."
    )
    circuit_failure_ratio: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Circuit breaker: the share of upstream failures that opens it.",
    )
    circuit_consecutive_failures: int = Field(
        5,
        ge=0,
        description="Circuit breaker: this many upstream failures in a row open it at once, "
        "whatever the window says (0: only the ratio).",
    )
    circuit_cooldown_s: float = Field(
        5.0, gt=0, description="Circuit breaker: the first pause; doubled on each new failure."
    )
    circuit_max_cooldown_s: float = Field(
        300.0, gt=0, description="Circuit breaker: longest pause."
    )
    circuit_sync_s: float = Field(
        0.5,
        gt=0,
        description="With Redis: how often each hub process exchanges circuit state with "
        "the others (an open or a close goes out at once).",
    )
    upstream_max_response_bytes: int = Field(
        4 << 20, ge=1024, description="Upstream answers larger than this are refused unread."
    )

    client_cache_ttl_s: float = Field(
        5.0, ge=0, description="How long a verified API key is trusted without a database read."
    )
    oauth_token_ttl_s: int = Field(
        300,
        ge=1,
        le=3600,
        description="Lifetime of the access tokens POST /oauth/token issues (seconds).",
    )
    audit_batch_max: int = Field(500, ge=1, description="Most audit records in one commit.")
    audit_checkpoint_every: int = Field(
        1000, ge=1, description="Sign the audit chain's end at least every this many records."
    )
    audit_checkpoint_interval_s: float = Field(
        60.0,
        gt=0,
        description="… and the longest a committed audit record stays unsigned: a timer signs "
        "the chain's end this often whenever a record is unsigned, idle hub or not.",
    )
    audit_fsync: bool | None = Field(
        None,
        description="Each audit commit waits for the disk (SQLite synchronous=FULL, "
        "PostgreSQL synchronous_commit=on), so a power loss takes no committed record; off, "
        "a commit survives the hub's kill -9 but a power loss can take the last ones "
        "(default: on in production only).",
    )
    audit_retention_days: float = Field(
        365.0,
        ge=0,
        description="Audit records older than this move to signed archive files "
        "(0: they stay in the database for ever).",
    )
    audit_archive_dir: str = Field(
        "audit-archive",
        description="Where archived audit records go (shared storage when several machines "
        "run the hub).",
    )
    audit_witness_file: str | None = Field(
        None,
        description="Where every signed audit checkpoint is also appended, out of the "
        "database's reach (default: checkpoints.jsonl in HUB_AUDIT_ARCHIVE_DIR).",
    )
    audit_archive_interval_s: float = Field(
        3600.0, gt=0, description="How often a hub process looks for audit records to archive."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Request bodies larger than this are refused (413)."
    )
    max_json_depth: int = Field(
        32, ge=1, le=512, description="Request JSON nested deeper than this is refused (400)."
    )
    max_json_items: int = Field(
        10_000,
        ge=1,
        description="Request JSON with more array elements and object members than this, "
        "all levels together, is refused (400).",
    )
    health_cache_s: float = Field(5.0, ge=0, description="How long /ready reuses probe results.")
    direct_path: bool = Field(
        True,
        description="Serve the call endpoints without FastAPI's per-request layers (the same "
        "answers, ~0.7 ms less CPU a call; off with CORS on). False: FastAPI serves everything.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API cross-origin, e.g. "
        '["https://portal.example.gov.vn"] (default: none, CORS off).',
    )

    profile_timeout_s: float = Field(
        12.0, gt=0, description="Deadline of the citizen profile; late sections are marked."
    )
    background_tasks: bool = Field(
        True,
        description="Run the background work in this process: polling unfinished jobs, "
        "querying payments with no callback, delivering webhooks. Safe in every process: "
        "rows are leased.",
    )
    worker_interval_s: float = Field(1.0, gt=0, description="How often background work runs.")
    job_poll_initial_s: float = Field(2.0, gt=0, description="First status poll of a job.")
    job_poll_max_s: float = Field(60.0, gt=0, description="Longest gap between job polls.")
    job_submit_stale_s: float = Field(
        120.0,
        gt=0,
        description="A job still `submitting` after this long (the hub stopped mid-submit) "
        "is marked failed.",
    )
    job_unconfirmed_s: float = Field(
        86400.0,
        gt=0,
        description="A submission whose outcome is unknown (a timeout, a lost answer) waits "
        "this long for upstream's push before it ends failed.",
    )
    job_lost_after_s: float = Field(
        3600.0,
        gt=0,
        description="A job upstream says it does not know (not found), and older than this, "
        "ends failed with UPSTREAM_LOST instead of being polled for ever.",
    )
    payment_provider: str | None = Field(
        None,
        max_length=64,
        description="The payment provider (an installed PaymentProvider adapter) that "
        "`POST /v1/payments` uses when its `?provider=` names none, and whose callbacks land at "
        "`/v1/payments/ipn`. Unset: the only provider installed (several need this set).",
    )
    payment_query_after_s: float = Field(
        60.0, ge=0, description="Ask upstream about a pending payment with no callback after this."
    )
    payment_query_max_s: float = Field(900.0, gt=0, description="Longest gap between queries.")
    payment_lost_after_s: float = Field(
        3600.0,
        gt=0,
        description="A pending payment the platform says it does not know, and older than "
        "this, ends failed.",
    )
    payment_query_until_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="Stop querying a payment still pending this long after it was opened "
        "(the payer gave up); it stays pending and reconciliation reports it.",
    )
    event_feed_page_size: int = Field(
        100, ge=1, le=1000, description="Events read from an upstream change feed at a time."
    )
    event_lease_s: float = Field(
        60.0,
        gt=0,
        description="How long a hub process holds a change feed or a PUSH subscription it "
        "works on; another process takes it over after this if the first died.",
    )
    event_retention_days: float = Field(
        30.0,
        ge=0,
        description="Events older than this, none of their deliveries pending, are removed "
        "(0: kept); replay reaches back this far.",
    )
    event_ttl_s: int = Field(
        3600, ge=60, le=30 * 86400, description="A subscription's default time to live of events."
    )
    govstack_instance: str = Field(
        "VN", max_length=64, description="GovStack IM identity: the instance the hub is in."
    )
    govstack_member_class: str = Field(
        "GOV", max_length=64, description="GovStack IM: member class."
    )
    govstack_member_code: str = Field(
        "LGSP", max_length=64, description="GovStack IM: the hub's member code."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, le=50, description="Webhook delivery attempts before the delivery is dead."
    )
    webhook_initial_backoff_s: float = Field(
        2.0, ge=0, description="First pause before a failed webhook delivery is tried again."
    )
    webhook_max_backoff_s: float = Field(
        600.0, ge=0, description="Longest pause between webhook delivery attempts."
    )
    webhook_timeout_s: float = Field(  # under the 60 s delivery lease
        5.0, gt=0, le=30, description="How long one webhook delivery may take."
    )
    https_callbacks_only: bool | None = Field(
        None,
        description="Accept only https callback URLs (default: in production only).",
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply database migrations when the hub starts (default: not in "
        "production, where `hub db upgrade` does it and a hub behind it refuses to start).",
    )
    public_callbacks_only: bool | None = Field(
        None,
        description="Send webhooks only to public addresses: never loopback, private, "
        "link-local or reserved ones, checked when the URL is given and again at each "
        "delivery (default: in production only).",
    )

    console_idle_timeout_s: float = Field(
        1800.0, gt=0, description="A console session ends after this long without a request."
    )
    console_session_max_s: float = Field(
        43200.0, gt=0, description="… and this long after its login, whatever the activity."
    )
    console_login_per_minute: int = Field(
        20,
        ge=1,
        description="Console login attempts a minute from one address (each account also "
        "locks after 5 failures in a row, for 30 s doubling to 15 min).",
    )

    adapters: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        repr=False,  # may carry adapters' secrets
        description="Per-adapter configuration overrides (tests); adapters otherwise read "
        "HUB_<ADAPTER>_* from the environment.",
    )
    enabled_adapters: list[str] | None = Field(
        None, description="Only load these adapters (default: every installed one)."
    )

    @property
    def audit_witness_path(self) -> Path:
        if self.audit_witness_file:
            return Path(self.audit_witness_file)
        return Path(self.audit_archive_dir) / "checkpoints.jsonl"

    @property
    def audit_fsync_on(self) -> bool:
        if self.audit_fsync is not None:
            return self.audit_fsync
        return self.environment == "production"

    @property
    def migrate_on_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.environment != "production"

    @property
    def callbacks_public_only(self) -> bool:
        if self.public_callbacks_only is not None:
            return self.public_callbacks_only
        return self.environment == "production"

    @property
    def log_format_used(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def callbacks_https_only(self) -> bool:
        if self.https_callbacks_only is not None:
            return self.https_callbacks_only
        return self.environment == "production"

    def sealer(self) -> Any:
        """The sealer of data at rest (hub.core.sealed) these settings give."""
        from hub.core.sealed import sealer_for

        key = None if self.data_key is None else self.data_key.get_secret_value()
        return sealer_for(key, self.secret_key.get_secret_value().encode())

    def check(self) -> None:
        """Refuse settings that must never run in production (raises ConfigurationError)."""
        configured = os.environ.get(SECRETS_DIR_VARIABLE)
        if configured and not Path(configured).is_dir():
            raise ConfigurationError(f"{SECRETS_DIR_VARIABLE} is not a directory")
        try:
            ProxyRules.build(self.upstream_proxy)
        except ValueError as exc:  # its message names the variable, never the credentials
            raise ConfigurationError(str(exc)) from None
        try:
            self.sealer()
        except ValueError as exc:  # its message never repeats the key
            raise ConfigurationError(str(exc)) from None
        for network in self.metrics_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"HUB_METRICS_NETWORKS: {network!r} is no network"
                ) from None
        if self.environment != "production":
            return
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET or len(secret) < 32:
            # With a known key, log pseudonyms of personal IDs could be reversed by trying
            # every ID, and API-key hashes would be computable by anyone.
            raise ConfigurationError(
                "HUB_SECRET_KEY must be set to a random value of 32+ characters in production"
            )


class ConfigurationError(Exception):
    """Settings the hub refuses to start with."""
