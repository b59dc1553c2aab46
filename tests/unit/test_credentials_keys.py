"""Issuer keys: ISSUER_KEYS parsing, key files generated only outside production."""

from __future__ import annotations

import base64
import secrets

import pytest

from backend.credentials import keys
from backend.residents.models import Community
from backend.settings import Settings, SettingsError


def seed() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def test_issuer_keys_setting_lists_keys_per_community_last_signs(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path), issuer_keys=f"NQ01:k1:{seed()}, NQ01:k2:{seed()},XH02:a:{seed()}")
    parsed = keys.configured_keys(settings)
    assert [kid for kid, _ in parsed["NQ01"]] == ["k1", "k2"] and [kid for kid, _ in parsed["XH02"]] == ["a"]
    for bad in ("NQ01:k1", f"NQ01:k1:{base64.b64encode(b'short').decode()}", "NQ01:k1:not base64!"):
        with pytest.raises(SettingsError):
            keys.configured_keys(Settings(data_dir=str(tmp_path), issuer_keys=bad))


async def test_production_never_generates_an_issuer_key(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path), zhilian_env="production")
    community = Community(id=1, code="NQ01", name="南桥")
    with pytest.raises(keys.IssuerKeyMissing):
        await keys.signer_for(settings=settings, community=community)
    assert not (tmp_path / "issuer-keys").exists()


def test_development_generates_one_key_file_and_reuses_it(tmp_path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    kid, key = keys._file_key(settings, "NQ01", create=True)
    again_kid, again = keys._file_key(settings, "NQ01", create=True)
    assert kid == again_kid and key.private_bytes_raw() == again.private_bytes_raw()
    path = tmp_path / "issuer-keys" / "NQ01" / f"{kid}.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys._file_key(settings, "XH02", create=False) is None


def test_did_web_of_a_community_follows_public_url() -> None:
    settings = Settings(public_url="https://zl.example.gov.cn/zhilian")
    assert keys.community_did(settings, "NQ01") == "did:web:zl.example.gov.cn:zhilian:communities:NQ01"
    assert keys.platform_did(settings) == "did:web:zl.example.gov.cn:zhilian"


def test_keygen_cli_prints_an_issuer_keys_entry(tmp_path, capsys) -> None:
    from backend.credentials.__main__ import main

    assert main(["keygen", "NQ01", "--kid", "k2027"]) == 0
    entry = capsys.readouterr().out.strip()
    parsed = keys.configured_keys(Settings(data_dir=str(tmp_path), issuer_keys=entry))
    assert [kid for kid, _ in parsed["NQ01"]] == ["k2027"]
