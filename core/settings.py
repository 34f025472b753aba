"""Warren's settings: one frozen struct read from ``WARREN_*`` environment variables.

Every field maps to ``WARREN_<FIELD>`` (upper case). Values are validated once at
start-up; a bad or missing value raises :class:`SettingsError` naming the variable, so
a misconfigured process stops before it serves anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "WARREN_"

# Fields that hold secrets: never echoed in errors or logs.
SECRET_FIELDS = frozenset(
    {
        "secret_key",
        "llm_api_key",
        "s3_secret_access_key",
        "github_token",
        "nango_secret_key",
        "nats_credentials_ingress",
        "nats_credentials_session",
        "nats_credentials_pool",
    }
)

# ``user:password`` of a NATS user, or empty (connect as the URL says).
_NATS_CREDENTIALS = r"^$|^[A-Za-z0-9_-]{1,64}:[^\s]{8,}$"


# URL fields that may carry a password or token in their userinfo part.
URL_FIELDS = ("database_url", "nats_url")

# Fields a Ray process reads from its own environment (on Kubernetes: a Secret), never from
# the Serve ``runtime_env``, which Ray stores and shows on its dashboard.
ENVIRONMENT_ONLY_FIELDS = SECRET_FIELDS | frozenset(URL_FIELDS)


def redact_url(url: str) -> str:
    """``url`` with any password or token in its userinfo replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0] if ":" in userinfo else ""
    return f"{scheme}://{user + ':' if user else ''}***@{host}"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the environment variable."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """All configuration of a Warren process. See README.md for the table."""

    secret_key: Annotated[str, msgspec.Meta(min_length=32)]
    """Signs cookies, WebSocket tokens, service tokens and sandbox tokens."""
    database_url: str = "postgresql://127.0.0.1:5432/warren"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_credentials_ingress: Annotated[str, msgspec.Meta(pattern=_NATS_CREDENTIALS)] = ""
    """``user:password`` the Serve ingress logs in to NATS with; empty: as the URL says."""
    nats_credentials_session: Annotated[str, msgspec.Meta(pattern=_NATS_CREDENTIALS)] = ""
    """``user:password`` of session actors (their event logs and lifecycle events)."""
    nats_credentials_pool: Annotated[str, msgspec.Meta(pattern=_NATS_CREDENTIALS)] = ""
    """``user:password`` of the pools and singletons (triggers, runs, outbox, scheduler)."""
    nats_prefix: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,30}$")] = "warren"
    """Namespace for JetStream stream names and subjects, so Warren shares a NATS safely."""
    nats_stream_max_bytes: Annotated[int, msgspec.Meta(ge=1024**2)] = 1024**3
    """Byte cap of the big JetStream streams (reserved on the NATS server's disk)."""
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    public_url: str = ""
    """Base URL browsers and sandboxes use to reach the API; defaults to http://host:port."""
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 1_048_576
    max_webhook_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 26_214_400
    serve_replicas: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    serve_min_replicas: Annotated[int, msgspec.Meta(ge=0, le=64)] = 1
    """Fewest ingress replicas when autoscaling (``serve_max_replicas`` > 0)."""
    serve_max_replicas: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    """Most ingress replicas; 0 turns Serve autoscaling off (``serve_replicas`` fixed)."""
    serve_max_ongoing_requests: Annotated[int, msgspec.Meta(ge=8)] = 1000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: str = ".data"
    cookie_secure: bool = False
    ws_token_ttl_seconds: Annotated[int, msgspec.Meta(ge=10, le=3600)] = 300
    sandbox_provider: Literal["local"] = "local"
    """Only the local provider is built so far; Modal and E2B come later."""
    sandbox_expiry_seconds: Annotated[int, msgspec.Meta(ge=10)] = 3600
    migration_lead_seconds: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    """How long before its sandbox expires a session migrates (or pauses, with no clients)."""
    migration_agent_wait_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """How long a migration waits for the agent to go idle before aborting its work."""
    idle_check_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """How often a session actor checks whether its session is idle."""
    idle_grace_web_seconds: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    """Inactivity before an idle web/CLI session is snapshotted and paused."""
    idle_grace_automation_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Inactivity before an idle automation/Slack session is snapshotted and paused."""
    opencode_bin: str = ""
    """Path to the ``opencode`` binary; defaults to the one deploy/sandbox installs."""
    artifact_store: Literal["local", "s3"] = "local"
    s3_bucket: str = "warren"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    llm_base_url: str = ""
    """OpenAI-compatible endpoint for the agent's model; empty means the scripted model."""
    llm_api_key: str = ""
    llm_model: str = "scripted"
    github_api_url: str = "https://api.github.com"
    github_token: str = ""
    nango_secret_key: str = ""
    """Verifies ``X-Nango-Hmac-Sha256`` on ``/webhooks/nango``; empty turns the route off."""
    linear_api_url: str = ""
    """Linear API base for polling triggers; empty means https://api.linear.app."""
    gmail_api_url: str = ""
    """Gmail API base for polling triggers; empty means https://gmail.googleapis.com."""
    slack_api_url: str = "https://slack.com/api"
    """Slack Web API base for run notifications."""

    def __post_init__(self) -> None:
        if self.serve_max_replicas and self.serve_min_replicas > self.serve_max_replicas:
            raise SettingsError(
                env_name("serve_min_replicas"),
                f"{self.serve_min_replicas} is above WARREN_SERVE_MAX_REPLICAS "
                f"({self.serve_max_replicas})",
            )

    @property
    def api_url(self) -> str:
        """The URL that reaches this deployment's API."""
        return self.public_url.rstrip("/") or f"http://{self.http_host}:{self.http_port}"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secret values masked, safe to log."""
        out = msgspec.structs.asdict(self)
        for name in SECRET_FIELDS:
            if out.get(name):
                out[name] = "***"
        for name in URL_FIELDS:
            out[name] = redact_url(out[name])
        return out


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return ENV_PREFIX + field.upper()


def _raw_value(field_type: Any, text: str) -> Any:
    if field_type == tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``).

    Raises :class:`SettingsError` naming the first bad or missing variable.
    """
    env = os.environ if environ is None else environ
    hints = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    raw: dict[str, Any] = {}
    for name, field_type in hints.items():
        value = env.get(env_name(name))
        if value is not None:
            raw[name] = _raw_value(field_type, value)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        if isinstance(exc.__cause__, SettingsError):  # a check across fields
            raise exc.__cause__ from None
        field = _field_from_error(str(exc))
        if field is None:
            raise SettingsError(ENV_PREFIX + "*", str(exc)) from None
        reason = str(exc).split(" - at ")[0]
        if field in SECRET_FIELDS or "required field" in reason:
            reason = reason if "required field" in reason else "invalid value"
        if "required field" in reason:
            reason = "is required"
        raise SettingsError(env_name(field), reason) from None


def _field_from_error(message: str) -> str | None:
    if "required field `" in message:
        return message.split("required field `", 1)[1].split("`", 1)[0]
    if "at `$." in message:
        return message.split("at `$.", 1)[1].split("`", 1)[0].split("[", 1)[0]
    return None
