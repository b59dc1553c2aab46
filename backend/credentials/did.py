"""did:web documents of the issuing communities (W3C "did:web Method Specification").

``did:web:<host>`` resolves to ``https://<host>/.well-known/did.json``; a path-based
``did:web:<host>:communities:<code>`` to ``https://<host>/communities/<code>/did.json``.
A port is percent-encoded (``host%3A8000``). Keys are ``Multikey`` verification methods
(W3C Controlled Identifiers 1.0 §2.2.2). Rotated keys stay listed as assertion methods so
credentials they signed keep verifying; a key withdrawn after a compromise is dropped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

from backend.credentials.errors import IssuerKeyUnknown
from backend.credentials.multikey import decode_ed25519_multikey

DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


def did_web(public_url: str, *path: str) -> str:
    """The did:web identifier served under `public_url` at `path` (none: the root document)."""
    parts = urlsplit(public_url)
    host = quote(parts.netloc, safe="")
    base_path = [p for p in parts.path.split("/") if p]
    return ":".join(["did", "web", host, *(quote(p, safe="") for p in (*base_path, *path))])


def did_web_url(did: str) -> str:
    """did:web Read (Resolve): the HTTPS address of a did:web document."""
    if not did.startswith("did:web:"):
        raise IssuerKeyUnknown(f"expected a did:web identifier, got {did!r}")
    host, *path = did[len("did:web:") :].split(":")
    if not path:
        return f"https://{unquote(host)}/.well-known/did.json"
    return f"https://{unquote(host)}/{'/'.join(unquote(p) for p in path)}/did.json"


def did_document(did: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    """A DID document with one Multikey per `(key id, publicKeyMultibase)`, all assertion methods."""
    methods = [
        {"id": f"{did}#{kid}", "type": "Multikey", "controller": did, "publicKeyMultibase": multibase}
        for kid, multibase in keys
    ]
    return {
        "@context": list(DID_CONTEXTS),
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": [m["id"] for m in methods],
    }


def resolve_assertion_key(document: dict[str, Any], method_id: str, *, issuer: str) -> bytes:
    """The raw Ed25519 key of `method_id`, if it is an assertion method of the issuer's document."""
    did = method_id.split("#", 1)[0]
    if did != issuer:
        raise IssuerKeyUnknown(f"expected a verification method of the issuer {issuer!r}, got {method_id!r}")
    if not isinstance(document, dict) or document.get("id") != issuer:
        got = document.get("id") if isinstance(document, dict) else None
        raise IssuerKeyUnknown(f"expected the DID document of {issuer!r}, got one for {got!r}")
    assertion = [m if isinstance(m, str) else m.get("id") for m in document.get("assertionMethod", [])]
    if method_id not in assertion:
        raise IssuerKeyUnknown(f"expected {method_id!r} among the assertion methods {assertion}, it is not")
    candidates = [m for m in document.get("verificationMethod", []) if m.get("id") == method_id]
    candidates += [m for m in document.get("assertionMethod", []) if isinstance(m, dict) and m.get("id") == method_id]
    if not candidates:
        raise IssuerKeyUnknown(f"expected a verification method {method_id!r} in the DID document, none found")
    method = candidates[0]
    if method.get("type") != "Multikey" or method.get("controller") != issuer:
        raise IssuerKeyUnknown(
            f"expected a Multikey controlled by {issuer!r}, got {method.get('type')!r} of {method.get('controller')!r}"
        )
    return decode_ed25519_multikey(method.get("publicKeyMultibase", ""))
