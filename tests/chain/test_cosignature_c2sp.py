"""Witnessed time and standard cosignatures, on real sequencer and witness processes.

Each witness signs a time with the checkpoint (BLS, aggregated: a quorum saw this tree by time T)
and emits a C2SP tlog-cosignature/v1 line (Ed25519). The lines are checked by a verifier written
here from c2sp.org/signed-note and c2sp.org/tlog-cosignature, sharing no code with ``chain``;
that verifier is first checked on a real public checkpoint cosigned by a public witness
(tests/chain/vectors/tlog_cosignature.json).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chain.verify import Trust, verify_final_checkpoint

VECTOR = json.loads((Path(__file__).parent / "vectors" / "tlog_cosignature.json").read_text())
DEPARTMENTS = ("civil_affairs", "social_security", "health")

# --- from the specs ----------------------------------------------------------------------------
# signed-note: a verifier key is <name>+<hex key ID>+<base64(type byte || public key)>, the key ID is
# SHA-256(name || 0x0A || type byte || public key)[:4]. A note is its text (newline-terminated lines),
# an empty line, then lines "— <name> <base64(key ID || signature)>"; lines of unknown keys are
# ignored. Type 0x01: Ed25519 over the text. tlog-cosignature, type 0x04: the signature is
# u64 big-endian timestamp || Ed25519 signature over "cosignature/v1\ntime <timestamp>\n" || text.


def spec_key(vkey: str) -> tuple[str, bytes, int, bytes]:
    name, key_id_hex, material = vkey.split("+", 2)
    raw = base64.b64decode(material)
    key_id = bytes.fromhex(key_id_hex)
    assert hashlib.sha256(name.encode() + b"\x0a" + raw).digest()[:4] == key_id, "key ID does not match the key"
    return name, key_id, raw[0], raw[1:]


def spec_split(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    text, _, signatures = note.rpartition("\n\n")
    lines = []
    for line in signatures.rstrip("\n").split("\n"):
        assert line.startswith("\u2014 "), line
        name, blob = line[2:].split(" ")
        lines.append((name, base64.b64decode(blob)))
    return text + "\n", lines


def spec_verify_note(note: str, vkey: str) -> str:
    """An Ed25519 (type 0x01) signature by ``vkey`` on the note; returns the text."""
    name, key_id, kind, public = spec_key(vkey)
    assert kind == 0x01
    text, lines = spec_split(note)
    mine = [blob for n, blob in lines if n == name and blob[:4] == key_id]
    assert mine, f"no signature by {name}"
    for blob in mine:
        Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], text.encode())
    return text


def spec_verify_cosignature(note: str, vkey: str) -> int:
    """A tlog-cosignature/v1 (type 0x04) line by ``vkey``; returns its timestamp."""
    name, key_id, kind, public = spec_key(vkey)
    assert kind == 0x04
    text, lines = spec_split(note)
    mine = [blob for n, blob in lines if n == name and blob[:4] == key_id]
    assert len(mine) == 1, f"expected one cosignature by {name}, found {len(mine)}"
    blob = mine[0]
    assert len(blob) == 4 + 8 + 64
    timestamp = int.from_bytes(blob[4:12], "big")
    assert timestamp < 2**63
    message = b"cosignature/v1\n" + b"time " + str(timestamp).encode() + b"\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)
    return timestamp


def test_the_spec_verifier_accepts_a_public_cosigned_checkpoint_and_nothing_else() -> None:
    note = VECTOR["note"]
    text = spec_verify_note(note, VECTOR["log_vkey"])
    assert text.splitlines()[1] == "1432088532"
    assert spec_verify_cosignature(note, VECTOR["cosigner_vkey"]) == VECTOR["cosigner_timestamp"]
    changed_size = note.replace("\n1432088532\n", "\n1432088533\n", 1)
    with pytest.raises(InvalidSignature):
        spec_verify_cosignature(changed_size, VECTOR["cosigner_vkey"])
    name = VECTOR["cosigner_vkey"].split("+")[0]
    line = next(line for line in note.splitlines() if line.startswith(f"\u2014 {name} "))
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[11] ^= 1  # another timestamp: the signature covers it
    changed_time = note.replace(line, f"\u2014 {name} {base64.b64encode(bytes(blob)).decode()}")
    with pytest.raises(InvalidSignature):
        spec_verify_cosignature(changed_time, VECTOR["cosigner_vkey"])


# --- our witnesses --------------------------------------------------------------------------------


@pytest.mark.processes
async def test_witnesses_attest_a_time_and_emit_standard_cosignatures(stack_factory) -> None:
    stack = stack_factory("cosign")
    stack.start()
    trust_json = stack.trust()
    trust = Trust.from_json(trust_json)
    started = int(time.time())
    async with stack.client(trust=trust) as client:
        await client.submit_many([(hashlib.sha256(f"c{i}".encode()).digest(), "credential") for i in range(7)])
        record = await client.latest_checkpoint(wait_size=7, timeout=15)
        bundle = (await client.get_inclusion(hashlib.sha256(b"c3").digest())).bundle
    ended = int(time.time())
    assert record is not None and record["size"] == 7

    # every witness has a type-0x04 key in the trust roots and a standard line on the final checkpoint
    text = spec_verify_note(record["cosigned_note"], trust_json["log_vkey"])
    assert text == record["note"].rpartition("\n\n")[0] + "\n"
    assert text.splitlines()[1] == "7"
    by_department = {w["department"]: w["cosigner_vkey"] for w in trust_json["witnesses"]}
    assert set(by_department) == set(DEPARTMENTS) and len(record["signers"]) >= 2
    for department in record["signers"]:
        seen = spec_verify_cosignature(record["cosigned_note"], by_department[department])
        assert started - 2 <= seen <= ended + 2, (department, seen, started, ended)

    # the BLS aggregate covers the proposed time: a quorum saw this tree by then
    from chain.verify import CheckpointTimeInvalid, CosignatureInvalid

    assert started - 2 <= record["timestamp"] <= ended + 2
    assert record["witnessed_at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(record["timestamp"])))
    verify_final_checkpoint(record, trust)
    with pytest.raises(CosignatureInvalid):
        verify_final_checkpoint(dict(record, timestamp=record["timestamp"] - 86400), trust)  # back-dated
    with pytest.raises(CheckpointTimeInvalid):
        verify_final_checkpoint({k: v for k, v in record.items() if k != "timestamp"}, trust)
    assert bundle["checkpoint"]["timestamp"] == record["timestamp"]

    # and a witness will not attest a time far from its own clock: back-dating needs the witnesses
    async with httpx.AsyncClient() as http:
        for department in DEPARTMENTS:
            url = stack.children[department].url
            answer = await http.post(f"{url}/v1/add-checkpoint", json={
                "old_size": 7, "consistency_proof": [], "checkpoint": record["note"],
                "timestamp": int(time.time()) - 3600})
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_timestamp", answer.text
            health = (await http.get(f"{url}/v1/health")).json()
            assert health["refused"] is None and health["cosigner_vkey"] == by_department[department]
