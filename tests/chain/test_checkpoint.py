"""C2SP signed-note and tlog-checkpoint: the Go reference vectors, round trips, tampering."""

from __future__ import annotations

import hashlib
import json

import pytest

from chain.checkpoint import (
    Checkpoint,
    CheckpointFormatError,
    KeyFormatError,
    NoteFormatError,
    NoteSignatureError,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
)

from .conftest import VECTORS

V = json.loads((VECTORS / "signed_note.json").read_text())


def test_reference_note_signs_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(V["skey"])
    assert signer.verifier.vkey == V["vkey"]
    assert sign_note(V["text"], signer) == V["note"]


def test_reference_note_opens() -> None:
    opened = open_note(V["note"], [NoteVerifier.from_vkey(V["vkey"])])
    assert opened.text == V["text"]
    assert opened.verified == ("PeterNeumann",)


def test_tampered_note_is_refused() -> None:
    verifier = NoteVerifier.from_vkey(V["vkey"])
    with pytest.raises(NoteSignatureError):
        open_note(V["note"].replace("cryptography", "cryptographi"), [verifier])
    other = NoteSigner.generate("Other").verifier
    with pytest.raises(NoteSignatureError, match="found none"):
        open_note(V["note"], [other])
    with pytest.raises(NoteFormatError):
        open_note(V["text"], [verifier])


def test_mangled_verifier_keys_are_refused() -> None:
    vkey = V["vkey"]
    for bad in [
        vkey[:-1],
        vkey.replace("c74f20a3", "c74f20a4"),
        "PeterNeumann+c74f20a3",
        vkey.replace("+A", "+Z", 1),
    ]:
        with pytest.raises(KeyFormatError):
            NoteVerifier.from_vkey(bad)


def test_checkpoint_round_trip() -> None:
    signer = NoteSigner.generate("example.com/log")
    checkpoint = Checkpoint("example.com/log", 42, hashlib.sha256(b"root").digest())
    note = sign_checkpoint(checkpoint, signer)
    assert note.startswith("example.com/log\n42\n")
    assert open_checkpoint(note, signer.verifier) == checkpoint
    assert checkpoint.cosignature_message(1765000000).endswith(b"time 1765000000\n" + checkpoint.text().encode())


def test_checkpoint_body_is_strict() -> None:
    root = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    for bad in [
        "o\n01\n" + root + "\n",
        "o\n-1\n" + root + "\n",
        "o\n1\nAAAA\n",
        "\n1\n" + root + "\n",
        "o\n1\n",
    ]:
        with pytest.raises(CheckpointFormatError):
            Checkpoint.parse(bad)
    assert Checkpoint.parse(f"o\n0\n{root}\next\n").extensions == ("ext",)


def test_checkpoint_from_another_origin_is_refused() -> None:
    signer = NoteSigner.generate("a.example/log")
    checkpoint = Checkpoint("a.example/log", 1, bytes(32))
    note = sign_checkpoint(checkpoint, signer)
    impostor = NoteVerifier(
        name="b.example/log", key_id=signer.verifier.key_id, public_key=signer.verifier.public_key
    )
    with pytest.raises(NoteSignatureError):
        open_checkpoint(note, impostor)
