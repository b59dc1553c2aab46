"""W3C "Bitstring Status List v1.0": revocation and suspension of credentials.

* the bitstring has at least 131,072 entries (16 KB, §6.1 minimum for herd privacy);
  index 0 is the left-most (most significant) bit of the first byte (§3.1.1);
* the list credential carries ``validUntil`` (VC 2.0 §4.9) and ``ttl`` (§2.2, milliseconds a
  verifier may cache it): it is signed afresh on every request, so it is valid for a day and
  should be fetched again after five minutes;
* ``encodedList`` = multibase base64url (prefix ``u``, no padding) of the GZIP-compressed
  bitstring (§2.2, "Generate Algorithm" §3.1.1);
* a ``BitstringStatusListEntry`` names the list credential, the purpose and the index (§2.1);
  validation (§3.2) checks the list credential's proof and purpose, expands the list
  (§3.1.2 "Expand Algorithm") and reads the bit.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

from backend.credentials.errors import MalformedMultikey, StatusListInvalid
from backend.credentials.multikey import multibase_base64url, multibase_decode

MIN_ENTRIES = 131_072
PURPOSES = ("revocation", "suspension")
ENTRY_TYPE = "BitstringStatusListEntry"
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
LIST_TYPE = "BitstringStatusList"
VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
MAX_EXPANDED_BYTES = 16 * 1024 * 1024  # refuse zip bombs
LIST_TTL_MS = 5 * 60 * 1000  # how long a verifier may cache a list before fetching it again
LIST_VALIDITY_S = 24 * 3600  # how long a signed list states the status (validFrom .. validUntil)


def generate_encoded_list(set_indices: list[int] | set[int], size: int = MIN_ENTRIES) -> str:
    """§3.1.1 Generate Algorithm: the bits of `set_indices` set, GZIP, multibase base64url."""
    if size < MIN_ENTRIES or size % 8:
        raise ValueError(f"expected a size of at least {MIN_ENTRIES} and a multiple of 8, got {size}")
    bits = bytearray(size // 8)
    for index in set_indices:
        if not 0 <= index < size:
            raise ValueError(f"expected an index in [0, {size}), got {index}")
        bits[index // 8] |= 0x80 >> (index % 8)
    return multibase_base64url(gzip.compress(bytes(bits), mtime=0))


def expand_encoded_list(encoded: str) -> bytes:
    """§3.1.2 Expand Algorithm: the raw bitstring of an ``encodedList``."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise StatusListInvalid(f"expected encodedList in multibase base64url ('u…'), got {str(encoded)[:8]!r}")
    try:
        compressed = multibase_decode(encoded)
        bits = gzip.GzipFile(fileobj=io.BytesIO(compressed)).read(MAX_EXPANDED_BYTES + 1)
    except (MalformedMultikey, OSError, EOFError) as exc:
        raise StatusListInvalid(f"expected a GZIP-compressed bitstring: {exc}") from None
    if len(bits) > MAX_EXPANDED_BYTES:
        raise StatusListInvalid(f"expected at most {MAX_EXPANDED_BYTES} bytes expanded, got more")
    if len(bits) * 8 < MIN_ENTRIES:
        raise StatusListInvalid(f"expected at least {MIN_ENTRIES} entries, the list has {len(bits) * 8}")
    return bits


def bit_at(bits: bytes, index: int) -> int:
    if not 0 <= index < len(bits) * 8:
        raise StatusListInvalid(f"expected statusListIndex in [0, {len(bits) * 8}), got {index}")
    return (bits[index // 8] >> (7 - index % 8)) & 1


def status_entry(list_url: str, purpose: str, index: int) -> dict[str, Any]:
    """A ``credentialStatus`` entry (§2.1)."""
    return {
        "id": f"{list_url}#{index}",
        "type": ENTRY_TYPE,
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def status_list_credential(
    *, list_url: str, issuer: str, purpose: str, set_indices: list[int] | set[int], valid_from: str, valid_until: str
) -> dict[str, Any]:
    """An unsecured ``BitstringStatusListCredential`` (§2.2); the caller adds the proof."""
    return {
        "@context": [VC_CONTEXT],
        "id": list_url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": valid_from,
        "validUntil": valid_until,
        "credentialSubject": {
            "id": f"{list_url}#list",
            "type": LIST_TYPE,
            "statusPurpose": purpose,
            "encodedList": generate_encoded_list(set_indices),
            "ttl": LIST_TTL_MS,
        },
    }


def read_status(entry: dict[str, Any], list_credential: dict[str, Any], bits: bytes | None = None) -> int:
    """§3.2 Validate Algorithm steps on an already proof-checked list credential: the status bit.

    `bits` is the list already expanded (a verifier checking many credentials expands it once).
    """
    if not isinstance(entry, dict) or entry.get("type") != ENTRY_TYPE:
        raise StatusListInvalid(f"expected a {ENTRY_TYPE}, got {entry!r}")
    types = list_credential.get("type") or []
    if LIST_CREDENTIAL_TYPE not in types:
        raise StatusListInvalid(f"expected a {LIST_CREDENTIAL_TYPE}, got type {types}")
    if list_credential.get("id") != entry.get("statusListCredential"):
        raise StatusListInvalid(
            f"expected list {entry.get('statusListCredential')!r}, got {list_credential.get('id')!r}"
        )
    subject = list_credential.get("credentialSubject") or {}
    if subject.get("statusPurpose") != entry.get("statusPurpose"):
        raise StatusListInvalid(
            f"expected statusPurpose {entry.get('statusPurpose')!r}, list has {subject.get('statusPurpose')!r}"
        )
    try:
        index = int(entry.get("statusListIndex", ""))
    except ValueError:
        raise StatusListInvalid(f"expected an integer statusListIndex, got {entry.get('statusListIndex')!r}") from None
    return bit_at(bits if bits is not None else expand_encoded_list(subject.get("encodedList", "")), index)
