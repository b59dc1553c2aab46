"""Settings: safe embedded defaults, and production refuses development secrets."""

from __future__ import annotations

import base64

import pytest

from backend.settings import Settings, SettingsError

STRONG = {
    "ZHILIAN_ENV": "production",
    "SECRET_KEY": "s" * 48,
    "FIELD_ENCRYPTION_KEY": base64.b64encode(b"f" * 32).decode(),
    "BLIND_INDEX_KEY": base64.b64encode(b"i" * 32).decode(),
    "QR_SIGNING_KEY": "q" * 48,
    "DATABASE_URL": "postgres://zhilian@db/zhilian",
    "REDIS_URL": "redis://cache:6379/0",
    "PUBLIC_URL": "https://zhilian.example.cn",
    "SMS_SENDER": "http",
    "SMS_GATEWAY_URL": "https://sms.example.cn/send",
}


def test_embedded_defaults_need_no_configuration():
    settings = Settings.from_env({}, env_file=None)
    assert settings.effective_database_url.startswith("sqlite://")
    assert settings.redis_url == ""
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_production_refuses_default_secrets_and_names_them():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"ZHILIAN_ENV": "production", "DATABASE_URL": STRONG["DATABASE_URL"]}, env_file=None)
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "BLIND_INDEX_KEY"):
        assert name in str(info.value)


def test_production_with_real_secrets_starts():
    settings = Settings.from_env(STRONG, env_file=None)
    assert settings.is_production


def test_production_needs_postgres_and_redis():
    with pytest.raises(SettingsError, match="PostgreSQL"):
        Settings.from_env({**STRONG, "DATABASE_URL": "sqlite:///tmp/x.db"}, env_file=None)
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env({**STRONG, "REDIS_URL": ""}, env_file=None)


def test_production_refuses_a_public_url_that_is_not_https():
    """did:web resolves over HTTPS only and the OAuth endpoints refuse plain http (issue 13 item 14)."""
    for url in ("", "http://zhilian.example.cn", "https://", "zhilian.example.cn"):
        with pytest.raises(SettingsError, match="PUBLIC_URL"):
            Settings.from_env({**STRONG, "PUBLIC_URL": url}, env_file=None)
    assert Settings.from_env({**STRONG, "PUBLIC_URL": "https://zl.example.cn/base"}, env_file=None).is_production
    assert not Settings.from_env({"PUBLIC_URL": "http://127.0.0.1:8000"}, env_file=None).is_production


def test_production_refuses_the_development_sms_sender():
    """The dev sender keeps login codes in a table instead of sending them: never in production."""
    for sender in ({"SMS_SENDER": "outbox"}, {"SMS_SENDER": ""}):
        with pytest.raises(SettingsError, match="SMS_SENDER"):
            Settings.from_env({**STRONG, **sender}, env_file=None)
    without_sender = {k: v for k, v in STRONG.items() if k != "SMS_SENDER"}  # the default is the dev sender
    with pytest.raises(SettingsError, match="SMS_SENDER"):
        Settings.from_env(without_sender, env_file=None)
    with pytest.raises(SettingsError, match="SMS_GATEWAY_URL"):
        Settings.from_env({**STRONG, "SMS_GATEWAY_URL": ""}, env_file=None)
    assert Settings.from_env({k: v for k, v in STRONG.items() if k != "ZHILIAN_ENV"}, env_file=None).sms_sender == "http"
    assert Settings.from_env({}, env_file=None).sms_sender == "outbox"  # development keeps its phone-in-a-table


def test_bad_values_are_named():
    with pytest.raises(SettingsError, match="PORT"):
        Settings.from_env({"PORT": "eighty"}, env_file=None)
    with pytest.raises(SettingsError, match="FIELD_ENCRYPTION_KEY"):
        Settings.from_env({"FIELD_ENCRYPTION_KEY": base64.b64encode(b"short").decode()}, env_file=None)


def test_env_example_documents_every_setting():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text(encoding="utf-8")
    documented = {line.split("=", 1)[0].lstrip("# ").strip() for line in text.splitlines() if "=" in line}
    from dataclasses import fields

    missing = [f.name.upper() for f in fields(Settings) if f.name != "extra" and f.name.upper() not in documented]
    assert not missing, f".env.example lacks {missing}"
