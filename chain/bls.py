"""BLS signatures, ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``.

Implements draft-irtf-cfrg-bls-signature-05 (§2 core operations, §3.3
proof-of-possession scheme): minimal-pubkey-size variant, public keys in G1
(48 bytes compressed), signatures in G2 (96 bytes), hash-to-curve of RFC 9380.

Two backends expose the same functions:

* ``pyecc``: py-ecc's ``G2ProofOfPossession``, the pure-Python reference (slow:
  ~0.6 s per pairing check);
* ``fast``: the ciphersuite rebuilt here on the curve operations of
  py-arkworks-bls12381 (points, scalars, ``hash_to_curve``, pairing check).

The module-level functions use the fast backend when it imports and the
reference otherwise; ``ZHILIAN_BLS_BACKEND=pyecc|fast`` forces one.  Pairings
are CPU-bound and synchronous: callers on an event loop must run them in an
executor.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from typing import Protocol

# BLS12-381 subgroup order r.
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
SIG_DST = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
POP_DST = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
PUBLIC_KEY_SIZE = 48
SIGNATURE_SIZE = 96
_KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"


class BLSError(ValueError):
    """Base class of BLS failures."""


class KeyGenError(BLSError):
    """KeyGen was given input keying material it must refuse."""


class AggregateError(BLSError):
    """Aggregate was given nothing to aggregate or an undecodable signature."""


class Backend(Protocol):
    name: str

    def KeyGen(self, ikm: bytes, key_info: bytes = b"") -> int: ...
    def SkToPk(self, sk: int) -> bytes: ...
    def KeyValidate(self, pk: bytes) -> bool: ...
    def Sign(self, sk: int, message: bytes) -> bytes: ...
    def Verify(self, pk: bytes, message: bytes, signature: bytes) -> bool: ...
    def Aggregate(self, signatures: Sequence[bytes]) -> bytes: ...
    def FastAggregateVerify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool: ...
    def PopProve(self, sk: int) -> bytes: ...
    def PopVerify(self, pk: bytes, proof: bytes) -> bool: ...


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def keygen(ikm: bytes, key_info: bytes = b"") -> int:
    """draft-irtf-cfrg-bls-signature-05 §2.3 KeyGen: HKDF-SHA-256 to a non-zero scalar mod r."""
    if len(ikm) < 32:
        raise KeyGenError(f"expected at least 32 bytes of input keying material, got {len(ikm)}")
    length = 48  # L = ceil((3 * ceil(log2(r))) / 16)
    salt = _KEYGEN_SALT
    sk = 0
    while sk == 0:
        salt = hashlib.sha256(salt).digest()
        prk = _hkdf_extract(salt, ikm + b"\x00")
        okm = _hkdf_expand(prk, key_info + length.to_bytes(2, "big"), length)
        sk = int.from_bytes(okm, "big") % CURVE_ORDER
    return sk


class FastBackend:
    """The ciphersuite on py-arkworks-bls12381 curve operations."""

    name = "fast"

    def __init__(self) -> None:
        import py_arkworks_bls12381 as ark

        self._ark = ark
        self._g1 = ark.G1Point()
        self._neg_g1 = -ark.G1Point()

    def _scalar(self, sk: int):
        if not 0 < sk < CURVE_ORDER:
            raise BLSError(
                f"expected a secret key in [1, r), got {'0' if sk == 0 else 'an out-of-range value'}"
            )
        return self._ark.Scalar.from_be_bytes(sk.to_bytes(32, "big"))

    def _pubkey_point(self, pk: bytes):
        """pubkey_to_point + KeyValidate: on the curve, in the subgroup, not the identity."""
        if len(pk) != PUBLIC_KEY_SIZE:
            return None
        try:
            point = self._ark.G1Point.from_compressed_bytes(pk)
        except Exception:
            return None
        if point == self._ark.G1Point.identity() or not point.is_in_subgroup():
            return None
        return point

    def _signature_point(self, signature: bytes):
        """signature_to_point + signature_subgroup_check."""
        if len(signature) != SIGNATURE_SIZE:
            return None
        try:
            point = self._ark.G2Point.from_compressed_bytes(signature)
        except Exception:
            return None
        if not point.is_in_subgroup():
            return None
        return point

    def KeyGen(self, ikm: bytes, key_info: bytes = b"") -> int:
        return keygen(ikm, key_info)

    def SkToPk(self, sk: int) -> bytes:
        return bytes((self._g1 * self._scalar(sk)).to_compressed_bytes())

    def KeyValidate(self, pk: bytes) -> bool:
        return self._pubkey_point(pk) is not None

    def _core_sign(self, sk: int, message: bytes, dst: bytes) -> bytes:
        point = self._ark.G2Point.hash_to_curve(message, dst) * self._scalar(sk)
        return bytes(point.to_compressed_bytes())

    def _core_verify(self, pk_point, message: bytes, signature: bytes, dst: bytes) -> bool:
        sig_point = self._signature_point(signature)
        if pk_point is None or sig_point is None:
            return False
        q = self._ark.G2Point.hash_to_curve(message, dst)
        # e(PK, H(m)) == e(g1, sig)  <=>  e(PK, H(m)) * e(-g1, sig) == 1
        return bool(self._ark.GT.pairing_check([pk_point, self._neg_g1], [q, sig_point]))

    def Sign(self, sk: int, message: bytes) -> bytes:
        return self._core_sign(sk, message, SIG_DST)

    def Verify(self, pk: bytes, message: bytes, signature: bytes) -> bool:
        return self._core_verify(self._pubkey_point(pk), message, signature, SIG_DST)

    def Aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise AggregateError("expected at least one signature to aggregate, got none")
        total = None
        for i, signature in enumerate(signatures):
            point = self._signature_point(signature)
            if point is None:
                raise AggregateError(f"expected signature {i} to be a G2 subgroup point, could not decode it")
            total = point if total is None else total + point
        return bytes(total.to_compressed_bytes())

    def FastAggregateVerify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        if not pks:
            return False
        total = None
        for pk in pks:
            point = self._pubkey_point(pk)
            if point is None:
                return False
            total = point if total is None else total + point
        return self._core_verify(total, message, signature, SIG_DST)

    def PopProve(self, sk: int) -> bytes:
        return self._core_sign(sk, self.SkToPk(sk), POP_DST)

    def PopVerify(self, pk: bytes, proof: bytes) -> bool:
        return self._core_verify(self._pubkey_point(pk), pk, proof, POP_DST)


class PyEccBackend:
    """py-ecc's ``G2ProofOfPossession``: the reference implementation."""

    name = "pyecc"

    def __init__(self) -> None:
        from py_ecc.bls import G2ProofOfPossession

        self._s = G2ProofOfPossession

    def KeyGen(self, ikm: bytes, key_info: bytes = b"") -> int:
        if len(ikm) < 32:
            raise KeyGenError(f"expected at least 32 bytes of input keying material, got {len(ikm)}")
        return self._s.KeyGen(ikm, key_info)

    def SkToPk(self, sk: int) -> bytes:
        if not 0 < sk < CURVE_ORDER:
            raise BLSError("expected a secret key in [1, r)")
        return bytes(self._s.SkToPk(sk))

    def KeyValidate(self, pk: bytes) -> bool:
        return bool(self._s.KeyValidate(pk))

    def Sign(self, sk: int, message: bytes) -> bytes:
        if not 0 < sk < CURVE_ORDER:
            raise BLSError("expected a secret key in [1, r)")
        return bytes(self._s.Sign(sk, message))

    def Verify(self, pk: bytes, message: bytes, signature: bytes) -> bool:
        return bool(self._s.Verify(pk, message, signature))

    def Aggregate(self, signatures: Sequence[bytes]) -> bytes:
        if not signatures:
            raise AggregateError("expected at least one signature to aggregate, got none")
        try:
            return bytes(self._s.Aggregate(list(signatures)))
        except Exception as exc:
            raise AggregateError(f"expected G2 subgroup points, could not aggregate: {exc}") from exc

    def FastAggregateVerify(self, pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
        return bool(self._s.FastAggregateVerify(list(pks), message, signature))

    def PopProve(self, sk: int) -> bytes:
        return bytes(self._s.PopProve(sk))

    def PopVerify(self, pk: bytes, proof: bytes) -> bool:
        return bool(self._s.PopVerify(pk, proof))


_backends: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The named backend (``fast`` or ``pyecc``), built once."""
    if name not in _backends:
        if name == "fast":
            _backends[name] = FastBackend()
        elif name == "pyecc":
            _backends[name] = PyEccBackend()
        else:
            raise BLSError(f"expected backend 'fast' or 'pyecc', got {name!r}")
    return _backends[name]


def _choose_backend() -> Backend:
    forced = os.environ.get("ZHILIAN_BLS_BACKEND")
    if forced:
        return get_backend(forced)
    try:
        return get_backend("fast")
    except ImportError:
        return get_backend("pyecc")


BACKEND: Backend = _choose_backend()


def KeyGen(ikm: bytes, key_info: bytes = b"") -> int:
    return BACKEND.KeyGen(ikm, key_info)


def SkToPk(sk: int) -> bytes:
    return BACKEND.SkToPk(sk)


def KeyValidate(pk: bytes) -> bool:
    return BACKEND.KeyValidate(pk)


def Sign(sk: int, message: bytes) -> bytes:
    return BACKEND.Sign(sk, message)


def Verify(pk: bytes, message: bytes, signature: bytes) -> bool:
    return BACKEND.Verify(pk, message, signature)


def Aggregate(signatures: Sequence[bytes]) -> bytes:
    return BACKEND.Aggregate(signatures)


def FastAggregateVerify(pks: Sequence[bytes], message: bytes, signature: bytes) -> bool:
    return BACKEND.FastAggregateVerify(pks, message, signature)


def PopProve(sk: int) -> bytes:
    return BACKEND.PopProve(sk)


def PopVerify(pk: bytes, proof: bytes) -> bool:
    return BACKEND.PopVerify(pk, proof)
