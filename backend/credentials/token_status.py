"""IETF "Token Status List" (draft-ietf-oauth-status-list): the status of SD-JWT VCs.

The SD-JWT VC draft (draft-ietf-oauth-sd-jwt-vc §3.2.2.2) points its ``status`` claim at this
mechanism, so the SD-JWT form of a credential uses it (the W3C form keeps its Bitstring Status
List). One Status List per community list pair, at the same random index as the credential's
Bitstring entries, two bits per entry so one list tells both revocation and suspension:

* Status List (§4): ``{"bits": 2, "lst": base64url(ZLIB(DEFLATE(bytes)))}``; entry ``i``
  occupies bits ``[bits*i, bits*i + bits)`` counted from the least significant bit of byte 0
  (§4.1: status 0 is in the lowest bits of the first byte);
* Status Types (§7.1): 0x00 VALID, 0x01 INVALID (revoked, final), 0x02 SUSPENDED;
* Status List Token in JWT form (§5.1): header ``typ: statuslist+jwt``; claims ``sub`` (the
  token's own URI, which the referenced token's ``uri`` must equal), ``iat``, ``exp``, ``ttl``
  (seconds a relying party may cache it) and ``status_list``;
* Referenced Token (§6.1): ``"status": {"status_list": {"idx": i, "uri": "https://…"}}``.
"""

from __future__ import annotations

import base64
import time
import zlib
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backend.credentials.errors import StatusListInvalid

TYP = "statuslist+jwt"
MEDIA_TYPE = "application/statuslist+jwt"
BITS = 2
VALID, INVALID, SUSPENDED = 0x00, 0x01, 0x02
TTL_S = 300  # relying parties fetch again after five minutes
VALIDITY_S = 24 * 3600  # exp: a cached token states the status for a day at most
MAX_EXPANDED_BYTES = 16 * 1024 * 1024  # refuse zip bombs


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_list(statuses: dict[int, int], *, size: int, bits: int = BITS) -> dict[str, Any]:
    """§4.1: the Status List of `size` entries with `statuses` (index -> value) set, others VALID."""
    if bits not in (1, 2, 4, 8) or (size * bits) % 8:
        raise ValueError(f"expected bits in 1, 2, 4, 8 and a whole number of bytes, got {bits} x {size}")
    raw = bytearray(size * bits // 8)
    per_byte = 8 // bits
    for index, value in statuses.items():
        if not 0 <= index < size or not 0 <= value < (1 << bits):
            raise ValueError(f"expected index < {size} and a {bits}-bit value, got {index}: {value}")
        raw[index // per_byte] |= value << (bits * (index % per_byte))
    return {"bits": bits, "lst": _b64url(zlib.compress(bytes(raw), 9))}


def read_status(status_list: Any, index: int) -> int:
    """§8.3 step 4-5: the status value at `index` of a (signature-checked) Status List."""
    if not isinstance(status_list, dict) or status_list.get("bits") not in (1, 2, 4, 8):
        raise StatusListInvalid(f"expected a status_list with bits 1, 2, 4 or 8, got {status_list!r}"[:200])
    bits = status_list["bits"]
    try:
        text = str(status_list.get("lst", ""))
        decompressor = zlib.decompressobj()
        raw = decompressor.decompress(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), MAX_EXPANDED_BYTES)
    except (ValueError, zlib.error) as exc:
        raise StatusListInvalid(f"expected lst to be base64url of a ZLIB stream: {exc}") from None
    if decompressor.unconsumed_tail:
        raise StatusListInvalid(f"expected at most {MAX_EXPANDED_BYTES} bytes expanded, got more")
    per_byte = 8 // bits
    if not isinstance(index, int) or not 0 <= index < len(raw) * per_byte:
        raise StatusListInvalid(f"expected idx in [0, {len(raw) * per_byte}), got {index!r}")
    return (raw[index // per_byte] >> (bits * (index % per_byte))) & ((1 << bits) - 1)


def sign_token(*, uri: str, issuer: str, status_list: dict[str, Any], private_key: Ed25519PrivateKey, kid: str,
               now: int | None = None) -> str:
    """§5.1 the Status List Token (JWT), signed with the community's issuing key (EdDSA)."""
    iat = int(time.time()) if now is None else now
    claims = {"sub": uri, "iss": issuer, "iat": iat, "exp": iat + VALIDITY_S, "ttl": TTL_S,
              "status_list": status_list}
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"typ": TYP, "kid": kid})


def verify_token(token: str, public_key: Ed25519PublicKey, *, uri: str) -> dict[str, Any]:
    """§8.3 steps 1-3: signature, ``typ``, ``sub`` equal to the referenced ``uri``, not expired."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, public_key, algorithms=["EdDSA"], options={"require": ["sub", "iat"]})
    except jwt.PyJWTError as exc:
        raise StatusListInvalid(f"expected a valid Status List Token: {exc}") from None
    if header.get("typ") != TYP:
        raise StatusListInvalid(f"expected typ {TYP!r}, got {header.get('typ')!r}")
    if claims.get("sub") != uri:
        raise StatusListInvalid(f"expected sub {uri!r}, got {claims.get('sub')!r}")
    return claims


def reference(uri: str, index: int) -> dict[str, Any]:
    """§6.1 the ``status`` claim of a referenced token."""
    return {"status_list": {"idx": index, "uri": uri}}
