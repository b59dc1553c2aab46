"""The provider's token-signing key and its public JWK Set (RFC 7517, kid = RFC 7638 thumbprint).

The key comes from `OAUTH_SIGNING_KEY` (PEM) or from `OAUTH_SIGNING_KEY_FILE`. In development a
missing file is generated on first run (P-256, mode 0600, created atomically so several workers
agree on one key). Production never generates a key: a missing key refuses to start, because a
silently new key would invalidate every token and every portal's cached JWKS.

OIDC Discovery 1.0 §3 requires RS256 among the ID token algorithms, and a client that registered
``id_token_signed_response_alg: RS256`` (OIDC Registration §2) gets its ID tokens signed so. When
the signing key is not RSA, a second key signs those: `OAUTH_RS256_KEY` (PEM) or
`OAUTH_RS256_KEY_FILE`, generated in development like the first (RSA 2048), required in production.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, KeySet, RSAKey

from backend.settings import Settings, SettingsError

DEFAULT_KEY_FILE = "oauth-signing-key.pem"
DEFAULT_RS256_KEY_FILE = "oauth-rs256-key.pem"


@dataclass(frozen=True)
class SigningKey:
    """The private key as joserfc wants it, its algorithm and its public JWK."""

    key: ECKey | RSAKey
    alg: str
    kid: str

    @property
    def key_set(self) -> KeySet:
        """A one-key set: joserfc then writes `kid` into every header it signs."""
        return KeySet([self.key])

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "use": "sig", "alg": self.alg, "kid": self.kid}]}


def key_file_path(settings: Settings) -> Path:
    return Path(settings.oauth_signing_key_file or Path(settings.data_dir) / DEFAULT_KEY_FILE)


def _generate_pem(kind: str = "ec") -> bytes:
    private = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write_new_key(path: Path, kind: str = "ec") -> None:
    """Create the key file exactly once; a concurrent creator's file wins and is read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(_generate_pem(kind))


def parse_pem(pem: bytes) -> SigningKey:
    """Accept an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256)."""
    private = serialization.load_pem_private_key(pem, password=None)
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        alg, key_cls = "ES256", ECKey
    elif isinstance(private, rsa.RSAPrivateKey) and private.key_size >= 2048:
        alg, key_cls = "RS256", RSAKey
    else:
        raise SettingsError("OAUTH_SIGNING_KEY must be an EC P-256 or an RSA (>= 2048 bits) private key")
    kid = key_cls.import_key(pem).thumbprint()
    key = key_cls.import_key(pem, parameters={"kid": kid, "use": "sig", "alg": alg})
    return SigningKey(key=key, alg=alg, kid=kid)


def load_signing_key(settings: Settings) -> SigningKey:
    """The configured key; in development generate the key file when it does not exist yet."""
    if settings.oauth_signing_key.strip():
        return parse_pem(settings.oauth_signing_key.replace("\\n", "\n").strip().encode())
    path = key_file_path(settings)
    if not path.is_file():
        if settings.is_production:
            raise SettingsError(
                f"production needs OAUTH_SIGNING_KEY or an existing OAUTH_SIGNING_KEY_FILE ({path} is missing); "
                "refusing to generate a signing key"
            )
        _write_new_key(path)
    return parse_pem(path.read_bytes())


def load_id_token_keys(settings: Settings, signing_key: SigningKey) -> dict[str, SigningKey]:
    """Every key an ID token may be signed with, by algorithm: the signing key, and an RS256 key."""
    keys = {signing_key.alg: signing_key}
    if "RS256" in keys:
        return keys
    if settings.oauth_rs256_key.strip():
        pem = settings.oauth_rs256_key.replace("\\n", "\n").strip().encode()
    else:
        path = Path(settings.oauth_rs256_key_file or Path(settings.data_dir) / DEFAULT_RS256_KEY_FILE)
        if not path.is_file():
            if settings.is_production:
                raise SettingsError(
                    f"production needs OAUTH_RS256_KEY or an existing OAUTH_RS256_KEY_FILE ({path} is missing): "
                    "OIDC Discovery requires RS256 ID tokens; refusing to generate a signing key"
                )
            _write_new_key(path, "rsa")
        pem = path.read_bytes()
    rs256 = parse_pem(pem)
    if rs256.alg != "RS256":
        raise SettingsError("OAUTH_RS256_KEY must be an RSA (>= 2048 bits) private key")
    keys["RS256"] = rs256
    return keys


def public_jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """The JWK Set of several keys (each once, by kid)."""
    seen: dict[str, dict[str, Any]] = {}
    for key in keys:
        for jwk in key.public_jwks()["keys"]:
            seen.setdefault(jwk["kid"], jwk)
    return {"keys": list(seen.values())}
