"""OAuth provider pieces that need no server: signing keys, pairwise subjects, browser sessions, the bridge."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backend.oauth import keys, service
from backend.oauth import session as browser
from backend.settings import Settings, SettingsError


def _settings(tmp_path, **kw) -> Settings:
    return replace(Settings(data_dir=str(tmp_path)), **kw)


def _pem(private) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_development_generates_one_key_file_and_reuses_it(tmp_path):
    settings = _settings(tmp_path)
    first = keys.load_signing_key(settings)
    path = tmp_path / keys.DEFAULT_KEY_FILE
    assert path.is_file() and (path.stat().st_mode & 0o777) == 0o600
    again = keys.load_signing_key(settings)
    assert first.alg == "ES256" and first.kid == again.kid
    jwk = first.public_jwks()["keys"][0]
    assert jwk["kid"] == first.kid and "d" not in jwk


def test_production_never_generates_a_key(tmp_path):
    settings = _settings(tmp_path, zhilian_env="production")
    with pytest.raises(SettingsError, match="OAUTH_SIGNING_KEY"):
        keys.load_signing_key(settings)
    assert not (tmp_path / keys.DEFAULT_KEY_FILE).exists()


def test_key_from_the_environment_ec_or_rsa_with_escaped_newlines(tmp_path):
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1())).replace("\n", "\\n")
    key = keys.load_signing_key(_settings(tmp_path, zhilian_env="production", oauth_signing_key=ec_pem))
    assert key.alg == "ES256"
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert keys.load_signing_key(_settings(tmp_path, oauth_signing_key=rsa_pem)).alg == "RS256"
    with pytest.raises(SettingsError):
        keys.load_signing_key(_settings(tmp_path, oauth_signing_key=_pem(ec.generate_private_key(ec.SECP384R1()))))


def test_an_rs256_key_for_id_tokens_beside_an_ec_signing_key(tmp_path):
    """OIDC Discovery requires RS256: generated and kept in development, required in production, not
    needed when the signing key is RSA already."""
    settings = _settings(tmp_path)
    signing = keys.load_signing_key(settings)
    first = keys.load_id_token_keys(settings, signing)
    assert list(first) == ["ES256", "RS256"] and first["RS256"].alg == "RS256"
    path = tmp_path / keys.DEFAULT_RS256_KEY_FILE
    assert (path.stat().st_mode & 0o777) == 0o600
    assert keys.load_id_token_keys(settings, signing)["RS256"].kid == first["RS256"].kid
    jwks = keys.public_jwks([signing, *first.values()])["keys"]
    assert sorted(k["alg"] for k in jwks) == ["ES256", "RS256"] and all("d" not in k for k in jwks)
    production = _settings(tmp_path / "prod", zhilian_env="production",
                           oauth_signing_key=_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(SettingsError, match="OAUTH_RS256_KEY"):
        keys.load_id_token_keys(production, keys.load_signing_key(production))
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    from_env = keys.load_id_token_keys(replace(production, oauth_rs256_key=rsa_pem), keys.load_signing_key(production))
    assert from_env["RS256"].alg == "RS256"
    with pytest.raises(SettingsError, match="RSA"):
        keys.load_id_token_keys(replace(production, oauth_rs256_key=_pem(ec.generate_private_key(ec.SECP256R1()))),
                                keys.load_signing_key(production))
    rsa_signing = keys.load_signing_key(replace(production, oauth_signing_key=rsa_pem))
    assert list(keys.load_id_token_keys(replace(production, oauth_signing_key=rsa_pem), rsa_signing)) == ["RS256"]


def test_pairwise_subjects_are_stable_per_sector_and_unlinkable_across(tmp_path):
    settings = _settings(tmp_path)
    a1 = service.pairwise_subject(settings=settings, sector_identifier="a.example", app_user_id=7)
    assert a1 == service.pairwise_subject(settings=settings, sector_identifier="a.example", app_user_id=7)
    assert a1 != service.pairwise_subject(settings=settings, sector_identifier="b.example", app_user_id=7)
    assert a1 != service.pairwise_subject(settings=settings, sector_identifier="a.example", app_user_id=8)
    keyed = _settings(tmp_path, oauth_pairwise_key="another-key")
    assert a1 != service.pairwise_subject(settings=keyed, sector_identifier="a.example", app_user_id=7)


def test_browser_session_round_trip_tamper_and_csrf(tmp_path):
    settings = _settings(tmp_path)
    session = browser.new_session(app_user_id=42)
    token = browser.encode(session, settings=settings)
    assert browser.decode(token, settings=settings) == session
    assert browser.decode(token[:-2] + "xx", settings=settings) is None
    other = replace(settings, secret_key="x" * 48)
    assert browser.decode(token, settings=other) is None
    csrf = browser.csrf_token(session, settings=settings)
    assert browser.csrf_ok(session, csrf, settings=settings)
    assert not browser.csrf_ok(browser.new_session(app_user_id=42), csrf, settings=settings)
    assert not browser.csrf_ok(None, csrf, settings=settings)
    assert not browser.cookie_is_secure(settings)
    assert browser.cookie_is_secure(replace(settings, public_url="https://zl.example"))


def test_redirect_uri_rules():
    assert service.validate_redirect_uri("https://portal.example/cb")
    assert service.validate_redirect_uri("http://127.0.0.1:8080/cb")
    for bad in ("http://portal.example/cb", "https://portal.example/cb#frag", "https://*.example/cb", "/relative",
                "javascript:alert(1)"):
        with pytest.raises(service.ValidationFailed):
            service.validate_redirect_uri(bad)


async def test_bridge_runs_orm_work_on_the_loop_and_refuses_to_deadlock(tmp_path):
    from backend.oauth.server import OAuthServer

    settings = _settings(tmp_path)
    loop = asyncio.get_running_loop()
    server = OAuthServer(settings=settings, signing_key=keys.load_signing_key(settings), loop=loop)
    try:
        async def on_loop() -> int:
            assert asyncio.get_running_loop() is loop
            return 41 + 1

        assert await server.run(lambda: server.call(on_loop())) == 42
        with pytest.raises(RuntimeError, match="deadlock"):
            server.call(on_loop())
    finally:
        server.close()
