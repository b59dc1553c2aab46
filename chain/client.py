"""What the backend uses to anchor hashes: an async httpx client for the sequencer API.

Requests to ``POST /v1/leaves`` are signed with the submitter's Ed25519 key
(``Zhilian-Ed25519``, see ``chain.keys``).  If a ``Trust`` is given, every
inclusion proof is verified offline (``chain.verify``) before it is returned.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import keys
from .verify import Trust, verify_inclusion_bundle


class ChainClientError(Exception):
    """The sequencer answered with an error; ``code`` is its stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Inclusion:
    """An inclusion proof in a final checkpoint (``bundle`` is the raw JSON, for offline re-checks)."""

    leaf_index: int
    tree_size: int
    proof: list[bytes]
    checkpoint: dict[str, Any]
    bundle: dict[str, Any]


@dataclass(frozen=True)
class LeafStatus:
    """Where a hash stands in the log: ``final`` (with its proof), ``pending`` or ``unknown``."""

    state: str
    leaf_index: int | None = None
    inclusion: Inclusion | None = None


class ChainClient:
    """``submit(hash, label) -> index``; ``get_inclusion(hash) -> Inclusion | None``; ``find(hash)``."""

    def __init__(
        self,
        base_url: str,
        *,
        submitter: str,
        private_key: Ed25519PrivateKey | str | Path,
        trust: Trust | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.submitter = submitter
        self._key = (
            private_key
            if isinstance(private_key, Ed25519PrivateKey)
            else keys.load_private_key(Path(private_key))
        )
        self.trust = trust
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    @classmethod
    def from_manifest(cls, path: str | Path, **kwargs: Any) -> ChainClient:
        """A client for a ``chain devstack`` (its ``devstack.json``), verifying proofs against its trust roots."""
        manifest = json.loads(Path(path).read_text())
        kwargs.setdefault("trust", Trust.from_json(manifest["trust"]))
        return cls(
            manifest["url"], submitter=manifest["submitter"], private_key=manifest["submitter_key"], **kwargs
        )

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @staticmethod
    def _raise_for(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            error = response.json()["error"]
            raise ChainClientError(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            raise ChainClientError(response.status_code, "http_error", response.text[:200]) from None

    async def submit_many(self, items: list[tuple[bytes, str]]) -> list[int]:
        """Append many ``(32-byte hash, label)`` in one durable batch; returns their indices."""
        body = json.dumps({"leaves": [{"hash": h.hex(), "label": label} for h, label in items]}).encode()
        path = "/v1/leaves"
        headers = {
            "content-type": "application/json",
            "authorization": keys.authorization_header(self.submitter, self._key, "POST", path, body),
        }
        response = await self._http.post(path, content=body, headers=headers)
        self._raise_for(response)
        return [leaf["index"] for leaf in response.json()["leaves"]]

    async def submit(self, leaf: bytes, label: str) -> int:
        """Append one 32-byte hash; returns its leaf index (the existing one for a duplicate)."""
        return (await self.submit_many([(leaf, label)]))[0]

    async def get_inclusion(self, leaf: bytes) -> Inclusion | None:
        """The proof of ``leaf`` in the latest final checkpoint, or None if unknown or not final yet."""
        return (await self.find(leaf)).inclusion

    async def find(self, leaf: bytes) -> LeafStatus:
        """Final (with the verified proof), pending (logged, not yet in a final checkpoint) or
        unknown (the log does not have it: submit it again)."""
        response = await self._http.get(f"/v1/inclusion/{leaf.hex()}")
        if response.status_code == 404:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = ""
            if code == "leaf_not_found":
                return LeafStatus("unknown")
        if response.status_code == 202:
            return LeafStatus("pending", int(response.json()["leaf_index"]))
        self._raise_for(response)
        bundle = response.json()
        if self.trust is not None:
            # A pairing (~3 ms): off the event loop.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, verify_inclusion_bundle, bundle, leaf, self.trust)
        inclusion = Inclusion(
            leaf_index=bundle["leaf_index"],
            tree_size=bundle["tree_size"],
            proof=[bytes.fromhex(h) for h in bundle["proof"]],
            checkpoint=bundle["checkpoint"],
            bundle=bundle,
        )
        return LeafStatus("final", inclusion.leaf_index, inclusion)

    async def latest_checkpoint(
        self, wait_size: int | None = None, timeout: float = 10.0
    ) -> dict[str, Any] | None:
        """The latest final checkpoint; with ``wait_size``, long-poll until one covers that many leaves."""
        params = {} if wait_size is None else {"wait_size": str(wait_size), "timeout": str(timeout)}
        response = await self._http.get("/v1/checkpoint", params=params, timeout=timeout + 5)
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    async def consistency(self, first: int, second: int) -> list[bytes]:
        response = await self._http.get("/v1/consistency", params={"first": first, "second": second})
        self._raise_for(response)
        return [bytes.fromhex(h) for h in response.json()["proof"]]

    async def health(self) -> dict[str, Any]:
        response = await self._http.get("/v1/health")
        self._raise_for(response)
        return response.json()

    async def witnesses(self) -> list[dict[str, Any]]:
        """The registered witnesses: ``department``, ``public_key``, ``pop`` (hex) and ``url``."""
        response = await self._http.get("/v1/witnesses")
        self._raise_for(response)
        return list(response.json()["witnesses"])
