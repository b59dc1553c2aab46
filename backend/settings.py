"""Typed settings read from the environment (and an optional `.env` file).

Every variable here is documented in `.env.example`. The defaults run the embedded
mode (SQLite file, in-process cache) on one machine; production (`ZHILIAN_ENV=production`)
refuses to start while any secret still has its published development value.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Published, well-known development values. They exist so that a fresh clone runs with one
# command; production refuses every one of them.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-0000000000000000"
DEV_FIELD_KEY = base64.b64encode(b"dev-insecure-field-key-32-bytes!").decode()
DEV_INDEX_KEY = base64.b64encode(b"dev-insecure-index-key-32-bytes!").decode()
DEV_QR_KEY = "dev-insecure-qr-signing-key-0000000000000000000000"


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the chosen mode."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"expected a boolean, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    """All configuration of one backend process.

    Field names are the environment variable names in lower case.
    """

    zhilian_env: str = "development"  # development | test | production
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str = ""  # how browsers reach us; defaults to http://HOST:PORT
    data_dir: str = str(REPO_ROOT / "var")
    database_url: str = ""  # default: sqlite file in DATA_DIR
    redis_url: str = ""  # empty: in-process cache (embedded mode only)
    cache_prefix: str = "zl:"
    auto_migrate: bool = True
    seed_demo: bool = False
    background_worker: bool = True  # outbox, period upkeep, reminders and purges in each server process

    secret_key: str = field(default=DEV_SECRET_KEY, repr=False)
    field_encryption_key: str = field(default=DEV_FIELD_KEY, repr=False)
    field_encryption_old_keys: str = field(default="", repr=False)  # "keyid:base64,keyid:base64" kept for decryption
    field_encryption_key_id: str = "k1"
    blind_index_key: str = field(default=DEV_INDEX_KEY, repr=False)
    qr_signing_key: str = field(default=DEV_QR_KEY, repr=False)

    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 14 * 24 * 3600
    refresh_reuse_grace_s: int = 10  # a just-rotated refresh token presented again this soon gets the same new pair
    session_cache_s: int = 30  # how long the cache may answer "session live" before the database is asked again
    login_max_per_account: int = 5  # failed attempts per window before a lock
    login_max_per_ip: int = 30
    login_window_s: int = 900
    otp_ttl_s: int = 300
    otp_max_attempts: int = 5
    otp_send_per_phone_per_hour: int = 5
    sms_sender: str = "outbox"  # outbox (development only: messages kept in a table) | http (a real gateway)
    sms_gateway_url: str = ""
    sms_gateway_key: str = field(default="", repr=False)
    sms_sign: str = "智链"
    wechat_app_id: str = ""  # WeChat official account for template messages (empty: SMS only)
    wechat_app_secret: str = field(default="", repr=False)
    wechat_template_ids: str = ""  # "reminder_due_soon:TEMPLATE_ID,reminder_overdue:TEMPLATE_ID"
    wechat_api_base: str = "https://api.weixin.qq.com"

    max_body_bytes: int = 10 * 1024 * 1024
    idempotency_ttl_s: int = 24 * 3600  # how long a create's answer is kept for retries with its Idempotency-Key
    log_level: str = "INFO"
    log_json: bool = True

    model_dir: str = str(REPO_ROOT / "models" / "face")  # the bundle shipped in the repository
    face_threads: int = 2  # threads running face models per worker
    cert_challenge_actions: str = "blink,turn_left,turn_right,open_mouth,nod"  # actions a challenge may ask for
    cert_starts_per_hour: int = 20  # certification sessions a caller may start per hour
    cert_max_failures: int = 5  # failed attempts within CERT_FAIL_WINDOW_S before a lock
    cert_fail_window_s: int = 3600
    cert_lock_s: int = 1800
    template_refresh_days: int = 90  # a template older than this is refreshed from a strong pass
    template_refresh_min_score: float = 0.7  # match score a pass needs to refresh the template
    frame_retention_days: int = 30  # review frames are purged after this many days
    suspend_after_months: int = 1  # consecutive missed months before the subsidy is suspended
    passive_min_sightings: int = 3  # device sightings in a period before staff may confirm passively
    passive_min_score: float = 0.6  # lowest device match score accepted
    chain_url: str = ""  # empty in embedded mode: scripts/dev starts a local chain
    chain_port: int = 8650  # scripts/dev's local chain: the sequencer's port (witnesses on the next three)
    chain_submitter: str = "backend"  # the submitter name the sequencer knows our key by
    chain_submitter_key: str = field(default="", repr=False)  # base64 Ed25519 seed signing appends
    chain_submitter_key_file: str = ""  # or a file holding it (a devstack's sequencer/submitters/backend.key)
    chain_trust_file: str = ""  # JSON trust roots: log_vkey, witnesses (department, BLS key), quorum
    chain_proof_wait_s: float = 5.0  # how long one anchoring step waits for a final checkpoint
    issuer_keys: str = field(default="", repr=False)  # "community:kid:base64-seed,…" (last per community signs)
    issuer_key_dir: str = ""  # default DATA_DIR/issuer-keys (generated there on first use in development)
    credential_verify_per_minute: int = 120  # public POST /credentials/verify calls per client address per minute

    oauth_signing_key: str = field(default="", repr=False)  # PEM (EC P-256 or RSA) signing OAuth access and ID tokens
    oauth_signing_key_file: str = ""  # default DATA_DIR/oauth-signing-key.pem (generated in dev only)
    oauth_rs256_key: str = field(default="", repr=False)  # PEM (RSA) signing ID tokens of clients asking RS256
    oauth_rs256_key_file: str = ""  # default DATA_DIR/oauth-rs256-key.pem (generated in dev only)
    oauth_pairwise_key: str = field(default="", repr=False)  # HMAC key of pairwise subjects; empty: derived from SECRET_KEY
    oauth_access_token_ttl_s: int = 600
    oauth_refresh_token_ttl_s: int = 30 * 24 * 3600
    oauth_session_ttl_s: int = 1800  # the resident's browser sign-in on the consent page

    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_production(self) -> bool:
        return self.zhilian_env == "production"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite://{Path(self.data_dir) / 'zhilian.sqlite3'}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, *, env_file: str | None = ".env") -> Settings:
        """Build settings from `env` (default: the process environment) over an optional .env file."""
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update(_read_env_file(Path(env_file)))
        values.update(os.environ if env is None else env)
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = values.get(f.name.upper())
            if raw is None:
                continue
            try:
                if f.type in ("int", int):
                    kwargs[f.name] = int(raw)
                elif f.type in ("float", float):
                    kwargs[f.name] = float(raw)
                elif f.type in ("bool", bool):
                    kwargs[f.name] = _bool(raw)
                else:
                    kwargs[f.name] = raw
            except ValueError as exc:
                raise SettingsError(f"{f.name.upper()}: {exc}") from exc
        if kwargs.get("zhilian_env") == "production" and "auto_migrate" not in kwargs:
            kwargs["auto_migrate"] = False  # several workers must not race to migrate: a deploy step does it
        if not kwargs.get("model_dir"):
            kwargs.pop("model_dir", None)
        settings = cls(**kwargs)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse configurations that would be unsafe or cannot work."""
        if self.zhilian_env not in {"development", "test", "production"}:
            raise SettingsError(f"ZHILIAN_ENV must be development, test or production, not {self.zhilian_env!r}")
        for name in ("field_encryption_key", "blind_index_key"):
            try:
                key = base64.b64decode(getattr(self, name), validate=True)
            except ValueError as exc:
                raise SettingsError(f"{name.upper()} is not valid base64") from exc
            if len(key) != 32:
                raise SettingsError(f"{name.upper()} must decode to 32 bytes, got {len(key)}")
        if not self.is_production:
            return
        defaults = {
            "SECRET_KEY": (self.secret_key, DEV_SECRET_KEY),
            "FIELD_ENCRYPTION_KEY": (self.field_encryption_key, DEV_FIELD_KEY),
            "BLIND_INDEX_KEY": (self.blind_index_key, DEV_INDEX_KEY),
            "QR_SIGNING_KEY": (self.qr_signing_key, DEV_QR_KEY),
        }
        unsafe = [name for name, (value, default) in defaults.items() if value == default]
        if unsafe:
            raise SettingsError(
                "refusing to start in production with development secrets: " + ", ".join(unsafe)
            )
        if len(self.secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters in production")
        if not self.database_url.startswith(("postgres://", "postgresql://", "asyncpg://")):
            raise SettingsError("production needs DATABASE_URL pointing at PostgreSQL")
        if not self.redis_url:
            raise SettingsError("production needs REDIS_URL (the in-process cache is per worker)")
        if not self.public_url.startswith("https://") or len(self.public_url) <= len("https://"):
            raise SettingsError(
                f"production needs PUBLIC_URL to be an https:// address, got {self.public_url or '(empty)'!r}: "
                "issuer DIDs are did:web (resolved over HTTPS only) and OAuth refuses plain http"
            )
        if self.sms_sender != "http":
            raise SettingsError(
                f"SMS_SENDER={self.sms_sender} is the development sender (it keeps messages, login codes included, "
                "in a table instead of sending them): production needs SMS_SENDER=http and SMS_GATEWAY_URL"
            )
        if not self.sms_gateway_url:
            raise SettingsError("production needs SMS_GATEWAY_URL for SMS_SENDER=http")


def _read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; '#' comments and blank lines ignored, quotes stripped."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values
