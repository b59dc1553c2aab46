"""SD-JWT VC (``typ: dc+sd-jwt``) of a certification, for portals that need selective disclosure.

IETF "Selective Disclosure for JWTs" (SD-JWT, draft-ietf-oauth-selective-disclosure-jwt) and
"SD-JWT-based Verifiable Credentials" (draft-ietf-oauth-sd-jwt-vc):

* a Disclosure is base64url(UTF-8 JSON ``[salt, claim name, claim value]``) (§4.2.1);
* its digest, base64url(SHA-256(ASCII of the Disclosure)), goes into ``_sd`` (§4.2.3), with
  ``_sd_alg: sha-256`` (§4.1.1) and decoy digests so the count of hidden claims leaks nothing;
* the issuer-signed JWT has header ``typ: dc+sd-jwt`` and a ``vct`` claim (SD-JWT VC §3.2);
* the presentation is ``<JWT>~<Disclosure>~…~`` with no Key Binding JWT (§4).

The name, the ID-number suffix, the credential id and the subject id are the separately
disclosable claims; the month's facts, ``iat``/``exp`` and the ``status`` reference (IETF Token
Status List, see ``token_status``) are plain, as SD-JWT VC §3.2.2 requires of ``exp`` and
``status``. `verify` checks ``exp`` (PyJWT refuses an expired token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backend.credentials.errors import SdJwtError

TYP = "dc+sd-jwt"
VCT = "urn:zhilian:vct:elderly-liveness-certification:1"
SD_ALG = "sha-256"
DISCLOSABLE = ("name", "id_number_suffix", "credential_id", "subject_id")
_RESERVED = {"_sd", "_sd_alg", "...", "iss", "iat", "nbf", "exp", "cnf", "vct", "status", "sub"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _create_disclosure(name: str, value: Any) -> str:
    """§4.2.1 Disclosures for Object Properties."""
    salt = _b64url(secrets.token_bytes(16))
    return _b64url(json.dumps([salt, name, value], ensure_ascii=False).encode())


def _hash_disclosure(disclosure: str) -> str:
    """§4.2.3 Hashing Disclosures (sha-256 over the ASCII of the base64url Disclosure)."""
    return _b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def issue(
    *, claims: dict[str, Any], disclosable: dict[str, Any], private_key: Ed25519PrivateKey, kid: str,
    issuer: str, decoys: int = 2,
) -> str:
    """An SD-JWT VC: `claims` in clear, each of `disclosable` as its own Disclosure."""
    disclosures = [_create_disclosure(name, value) for name, value in disclosable.items()]
    digests = [_hash_disclosure(d) for d in disclosures]
    digests += [_b64url(hashlib.sha256(secrets.token_bytes(32)).digest()) for _ in range(decoys)]
    payload = {"iss": issuer, "vct": VCT, **claims, "_sd": sorted(digests), "_sd_alg": SD_ALG}
    token = jwt.encode(payload, private_key, algorithm="EdDSA", headers={"typ": TYP, "kid": kid})
    return token + "~" + "".join(d + "~" for d in disclosures)


def verify(sd_jwt: str, public_key: Ed25519PublicKey | bytes, *, expected_issuer: str | None = None) -> dict[str, Any]:
    """§7.1 Verification of the SD-JWT: the signed claims with the disclosed ones restored."""
    if isinstance(public_key, bytes):
        public_key = Ed25519PublicKey.from_public_bytes(public_key)
    parts = sd_jwt.split("~")
    if len(parts) < 2 or parts[-1] != "":
        raise SdJwtError("expected <JWT>~<Disclosure>~…~ ending in '~' (no key binding), got another shape")
    token, disclosures = parts[0], parts[1:-1]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SdJwtError(f"expected a JWS in compact form: {exc}") from None
    if header.get("typ") != TYP or header.get("alg") != "EdDSA":
        raise SdJwtError(f"expected header typ {TYP!r} alg 'EdDSA', got {header.get('typ')!r} {header.get('alg')!r}")
    try:
        payload = jwt.decode(token, public_key, algorithms=["EdDSA"], options={"verify_aud": False})
    except jwt.PyJWTError as exc:
        raise SdJwtError(f"expected the issuer signature to verify: {exc}") from None
    if payload.get("_sd_alg") != SD_ALG:
        raise SdJwtError(f"expected _sd_alg {SD_ALG!r}, got {payload.get('_sd_alg')!r}")
    if expected_issuer is not None and payload.get("iss") != expected_issuer:
        raise SdJwtError(f"expected iss {expected_issuer!r}, got {payload.get('iss')!r}")
    if not payload.get("vct"):
        raise SdJwtError("expected a vct claim, none present")
    digests = payload.get("_sd", [])
    if len(set(digests)) != len(digests):
        raise SdJwtError("expected distinct digests in _sd, found a repeated one")
    claims = {k: v for k, v in payload.items() if k not in ("_sd", "_sd_alg")}
    seen: set[str] = set()
    for disclosure in disclosures:
        digest = _hash_disclosure(disclosure)
        if digest not in digests:
            raise SdJwtError(f"expected the digest of each disclosure in _sd, {digest} is not")
        if digest in seen:
            raise SdJwtError(f"expected each disclosure once, {digest} appears twice")
        seen.add(digest)
        try:
            salt, name, value = json.loads(_b64url_decode(disclosure))
        except (ValueError, TypeError) as exc:
            raise SdJwtError(f"expected a disclosure [salt, name, value]: {exc}") from None
        if not isinstance(salt, str) or not isinstance(name, str) or name in _RESERVED or name in claims:
            raise SdJwtError(f"expected a new, non-reserved claim name in a disclosure, got {name!r}")
        claims[name] = value
    return claims


def present(sd_jwt: str, *, reveal: set[str]) -> str:
    """The holder's presentation: the same SD-JWT with only the Disclosures of `reveal`."""
    token, *disclosures = sd_jwt.split("~")
    kept = [d for d in disclosures if d and json.loads(_b64url_decode(d))[1] in reveal]
    return token + "~" + "".join(d + "~" for d in kept)
