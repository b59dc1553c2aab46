"""Checkpoints as C2SP signed notes.

* C2SP ``signed-note`` (https://c2sp.org/signed-note): a note is UTF-8 text
  ending in a newline, a blank line, then signature lines
  ``— <key name> <base64(key hash || signature)>``.  For Ed25519 (signature
  type 0x01) the 4-byte key hash is ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``,
  verifier keys are ``<name>+<hex key hash>+<base64(0x01 || pubkey)>`` and
  signer keys ``PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>``.
* C2SP ``tlog-checkpoint`` (https://c2sp.org/tlog-checkpoint): the note text is
  the origin line, the decimal tree size, the base64 root hash, then optional
  extension lines.

Witnesses cosign twice (DESIGN §6):

* BLS12-381, for compact bundles: every witness signs the same message,
  ``COSIGNATURE_CONTEXT || "time <T>\\n" || checkpoint text``, where ``T`` is the
  POSIX time the sequencer proposed for the round and each witness checked
  against its own clock, so that cosignatures aggregate and verify with one
  FastAggregateVerify and a quorum attests "we saw this tree by time T".
* C2SP ``tlog-cosignature`` v1 (https://c2sp.org/tlog-cosignature), Ed25519,
  so that any standard witness client can check the checkpoint: the witness
  signs ``"cosignature/v1\\ntime <t>\\n" || checkpoint text`` with its own
  time ``t`` and the note line is ``— <name> base64(key ID || u64 t || sig)``,
  key ID ``SHA-256(name || 0x0A || 0x04 || pubkey)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100
# v2: the message carries the witnessed time (v1, without it, proved order but not time)
COSIGNATURE_CONTEXT = b"zhilian/bls-cosignature/v2\n"
MAX_TIMESTAMP = 2**63 - 1


class NoteError(ValueError):
    """Base class of signed-note failures."""


class KeyFormatError(NoteError):
    """A signer or verifier key string is malformed."""


class NoteFormatError(NoteError):
    """A note does not follow the signed-note grammar."""


class NoteSignatureError(NoteError):
    """No signature on the note verifies under the trusted keys."""


class CheckpointFormatError(NoteError):
    """A note's text is not a tlog-checkpoint body."""


def _b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"expected base64 {what}, got {text!r}") from exc


def _valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() for c in name) and "+" not in name


def key_hash(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte key ID of signed-note: SHA-256(name || "\\n" || alg || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True)
class NoteVerifier:
    """A trusted Ed25519 note key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> NoteVerifier:
        """Parse ``<name>+<hex hash>+<base64(0x01 || pubkey)>`` and check the hash matches the key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
            raise KeyFormatError(f"expected <name>+<8 hex digits>+<base64 key>, got {vkey!r}")
        name, hash_hex, key_b64 = parts
        raw = _b64decode(key_b64, "verifier key", KeyFormatError)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise KeyFormatError(f"expected 0x01 followed by a 32-byte Ed25519 key, got {len(raw)} bytes")
        try:
            declared = bytes.fromhex(hash_hex)
        except ValueError as exc:
            raise KeyFormatError(f"expected a hex key hash, got {hash_hex!r}") from exc
        computed = key_hash(name, raw[1:])
        if declared != computed:
            raise KeyFormatError(f"expected key hash {computed.hex()} for {name}, got {hash_hex}")
        return cls(name=name, key_id=declared, public_key=raw[1:])

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class NoteSigner:
    """An Ed25519 note signing key."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        if not _valid_name(name):
            raise KeyFormatError(f"expected a key name without spaces or '+', got {name!r}")
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+<name>+<hex hash>+<base64(0x01 || seed)>``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
            raise KeyFormatError("expected PRIVATE+KEY+<name>+<hash>+<base64 key>")
        raw = _b64decode(parts[4], "signer key", KeyFormatError)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise KeyFormatError(f"expected 0x01 followed by a 32-byte Ed25519 seed, got {len(raw)} bytes")
        signer = cls(name=parts[2], private_key=Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != parts[3]:
            raise KeyFormatError(f"expected key hash {signer.verifier.key_id.hex()}, got {parts[3]}")
        return signer

    @property
    def public_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def verifier(self) -> NoteVerifier:
        pub = self.public_key
        return NoteVerifier(name=self.name, key_id=key_hash(self.name, pub), public_key=pub)

    @property
    def skey(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{encoded}"

    def sign_line(self, text: str) -> str:
        signature = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


def sign_note(text: str, *signers: NoteSigner) -> str:
    """Render ``text`` as a signed note carrying one signature line per signer."""
    _check_text(text)
    return text + "\n" + "".join(signer.sign_line(text) for signer in signers)


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteFormatError("expected note text to end with a newline")
    if "\n\n" in text:
        raise NoteFormatError("expected note text without blank lines")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteFormatError("expected note text without control characters")


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified: tuple[str, ...]


def open_note(note: str, verifiers: list[NoteVerifier]) -> OpenedNote:
    """Split a signed note and check it carries at least one valid signature from ``verifiers``."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteFormatError("expected note text, a blank line, then signature lines")
    text, sig_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    lines = sig_block[:-1].split("\n") if sig_block else []
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"expected 1 to {MAX_SIGNATURES} signature lines, got {len(lines)}")
    verified: list[str] = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteFormatError(f"expected a signature line starting with an em dash, got {line!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(blob, "signature", NoteFormatError)
        if len(raw) < 5 or not _valid_name(name):
            raise NoteFormatError(f"expected a key name and key hash + signature, got {line!r}")
        for verifier in verifiers:
            if verifier.name == name and verifier.key_id == raw[:4]:
                if not verifier.verify(text.encode(), raw[4:]):
                    raise NoteSignatureError(
                        f"expected a valid signature by {name}, the signature does not verify"
                    )
                verified.append(name)
    if not verified:
        names = ", ".join(v.name for v in verifiers) or "none"
        raise NoteSignatureError(f"expected a signature by a trusted key ({names}), found none")
    return OpenedNote(text=text, verified=tuple(verified))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    def cosignature_message(self, timestamp: int) -> bytes:
        """What every witness signs with BLS: a context string, the witnessed time, the checkpoint text."""
        _check_timestamp(timestamp)
        return COSIGNATURE_CONTEXT + f"time {timestamp}\n".encode() + self.text().encode()

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointFormatError("expected checkpoint text to end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointFormatError(f"expected at least 3 lines (origin, size, root), got {len(lines)}")
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise CheckpointFormatError("expected a non-empty origin line")
        if not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
            raise CheckpointFormatError(
                f"expected a decimal tree size without leading zeros, got {size_line!r}"
            )
        root = _b64decode(root_line, "root hash", CheckpointFormatError)
        if len(root) != 32:
            raise CheckpointFormatError(f"expected a 32-byte root hash, got {len(root)} bytes")
        if any(not line for line in extensions):
            raise CheckpointFormatError("expected non-empty extension lines")
        return cls(origin=origin, size=int(size_line), root_hash=root, extensions=tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The checkpoint as a note signed by the log key."""
    if signer.name != checkpoint.origin:
        raise KeyFormatError(
            f"expected the log key name to equal the origin {checkpoint.origin!r}, got {signer.name!r}"
        )
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(note: str, log_verifier: NoteVerifier) -> Checkpoint:
    """Verify the log signature on a checkpoint note and parse its body."""
    opened = open_note(note, [log_verifier])
    checkpoint = Checkpoint.parse(opened.text)
    if checkpoint.origin != log_verifier.name:
        raise CheckpointFormatError(f"expected origin {log_verifier.name!r}, got {checkpoint.origin!r}")
    return checkpoint


# --- C2SP tlog-cosignature v1 (Ed25519) ------------------------------------------------------------


class CosignatureError(NoteError):
    """A tlog-cosignature line is malformed, from the wrong key, or does not verify."""


def _check_timestamp(timestamp: int) -> None:
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"expected a POSIX timestamp in [0, 2^63-1], got {timestamp!r}")


def cosignature_v1_message(text: str, timestamp: int) -> bytes:
    """The Ed25519 cosigned message: header line, time line, then the checkpoint text."""
    _check_timestamp(timestamp)
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True)
class CosignerVerifier:
    """A witness's Ed25519 cosigning key as a verifier key of signature type 0x04."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignerVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
            raise KeyFormatError(f"expected <name>+<8 hex digits>+<base64 key>, got {vkey!r}")
        name, hash_hex, key_b64 = parts
        raw = _b64decode(key_b64, "cosigner key", KeyFormatError)
        if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
            raise KeyFormatError(f"expected 0x04 followed by a 32-byte Ed25519 key, got {len(raw)} bytes")
        computed = key_hash(name, raw[1:], ALG_COSIGNATURE_V1)
        if hash_hex != computed.hex():
            raise KeyFormatError(f"expected key hash {computed.hex()} for {name}, got {hash_hex}")
        return cls(name=name, key_id=computed, public_key=raw[1:])

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


@dataclass(frozen=True)
class CosignerKey:
    """A witness's Ed25519 cosigning key (one key per witness name: the message does not name it)."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> CosignerKey:
        if not _valid_name(name):
            raise KeyFormatError(f"expected a key name without spaces or '+', got {name!r}")
        return cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def verifier(self) -> CosignerVerifier:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pub = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return CosignerVerifier(self.name, key_hash(self.name, pub, ALG_COSIGNATURE_V1), pub)

    def sign_line(self, text: str, timestamp: int) -> str:
        """One note signature line: ``— <name> base64(key ID || u64 timestamp || signature)``."""
        signature = self.private_key.sign(cosignature_v1_message(text, timestamp))
        blob = self.verifier.key_id + timestamp.to_bytes(8, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


def open_cosignatures(note: str, cosigners: list[CosignerVerifier]) -> tuple[str, dict[str, int]]:
    """The note text and, per trusted cosigner whose line it carries, the verified timestamp.

    Lines of other keys are ignored (signed-note); a line of a trusted key that does not verify
    fails the whole note."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteFormatError("expected note text, a blank line, then signature lines")
    text, sig_block = note[: split + 1], note[split + 2 :]
    _check_text(text)
    lines = sig_block[:-1].split("\n") if sig_block else []
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"expected at most {MAX_SIGNATURES} signature lines, got {len(lines)}")
    times: dict[str, int] = {}
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteFormatError(f"expected a signature line starting with an em dash, got {line!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(blob, "signature", NoteFormatError)
        for cosigner in cosigners:
            if cosigner.name != name or raw[:4] != cosigner.key_id:
                continue
            if len(raw) != 4 + 8 + 64:
                raise CosignatureError(f"expected a 76-byte cosignature from {name}, got {len(raw)} bytes")
            timestamp = int.from_bytes(raw[4:12], "big")
            if timestamp > MAX_TIMESTAMP:
                raise CosignatureError(f"expected a timestamp below 2^63 from {name}, got {timestamp}")
            try:
                Ed25519PublicKey.from_public_bytes(cosigner.public_key).verify(
                    raw[12:], cosignature_v1_message(text, timestamp)
                )
            except InvalidSignature as exc:
                raise CosignatureError(f"expected a valid cosignature/v1 by {name}, it does not verify") from exc
            times[name] = timestamp
    return text, times
