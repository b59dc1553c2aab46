"""The witnessed time and the witnesses' proofs of possession, as every verifier sees them: chain.verify,
the backend's offline verifier, scripts/verify, `python -m chain verify` and the backend's settings.

Built locally (no processes): a credential, a checkpoint with its BLS aggregate over the witnessed
time and the witnesses' C2SP tlog-cosignature/v1 lines, and the trust roots."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.credentials import eddsa_jcs, status_list
from backend.credentials.anchor import chain_client_from_settings
from backend.credentials.did import did_document, did_web
from backend.credentials.multikey import encode_ed25519_multikey
from backend.credentials.service import trust_json
from backend.credentials.verify import CREDENTIAL_TYPE, leaf_hash, verify_credential
from backend.settings import Settings, SettingsError
from chain import bls
from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from chain.merkle import MerkleTree, hash_leaf
from chain.verify import RogueKey, Trust, encode_bitmap, verify_final_checkpoint

ROOT = Path(__file__).resolve().parents[2]
DID = did_web("https://zl.example", "communities", "NQ02")
DEPARTMENTS = ("civil_affairs", "social_security", "health")
SKS = [bls.KeyGen(f"time-{d}".encode().ljust(32, b"-")) for d in DEPARTMENTS]
LOG = NoteSigner.generate("zl.example/chain")
ISSUER = Ed25519PrivateKey.generate()
VALID_FROM = "2026-11-01T00:00:00Z"
AFTER = 1793577600  # 2026-11-02T00:00:00Z


def cosigners() -> list:
    from chain.checkpoint import CosignerKey

    return [CosignerKey.from_seed(f"zl.example/witness/{d}", bytes([i + 7]) * 32) for i, d in enumerate(DEPARTMENTS)]


def trust_data(*, pops: bool = True, cosigner_keys: bool = True) -> dict:
    witnesses = []
    for i, (d, sk) in enumerate(zip(DEPARTMENTS, SKS, strict=True)):
        entry = {"department": d, "public_key": bls.SkToPk(sk).hex()}
        if cosigner_keys:
            entry["cosigner_vkey"] = cosigners()[i].verifier.vkey
        if pops:
            entry["pop"] = bls.PopProve(sk).hex()
        witnesses.append(entry)
    return {"log_vkey": LOG.verifier.vkey, "quorum": 2, "witnesses": witnesses}


def build(witnessed: int, valid_from: str = VALID_FROM) -> tuple[dict, dict]:
    """A signed credential and its inclusion in a checkpoint that civil_affairs and health cosigned at ``witnessed``."""
    method = f"{DID}#k1"
    credential = eddsa_jcs.add_proof({
        "@context": [status_list.VC_CONTEXT], "id": "urn:uuid:00000000-0000-0000-0000-000000000001",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE], "issuer": DID, "validFrom": valid_from,
        "credentialSubject": {"id": "urn:uuid:10000000-0000-0000-0000-000000000001", "period": "2026-11",
                              "method": "self", "certifiedAt": valid_from, "assuranceLevel": "substantial"},
    }, private_key=ISSUER, verification_method=method)
    tree = MerkleTree([hash_leaf(leaf_hash(credential)), hash_leaf(b"\x01" * 32)])
    checkpoint = Checkpoint(LOG.name, tree.size, tree.root())
    note = sign_checkpoint(checkpoint, LOG)
    signing = [True, False, True]
    signers = [i for i, on in enumerate(signing) if on]
    record = {
        "note": note, "size": tree.size, "root_hash": base64.b64encode(tree.root()).decode(),
        "witnesses": [{"department": d, "public_key": bls.SkToPk(sk).hex()} for d, sk in zip(DEPARTMENTS, SKS, strict=True)],
        "signer_bitmap": encode_bitmap(signing), "signers": [DEPARTMENTS[i] for i in signers],
        "aggregate_signature": bls.Aggregate([bls.Sign(SKS[i], checkpoint.cosignature_message(witnessed))
                                              for i in signers]).hex(),
        "timestamp": witnessed,
        "cosigned_note": note + "".join(cosigners()[i].sign_line(checkpoint.text(), witnessed) for i in signers),
    }
    inclusion = {"hash": leaf_hash(credential).hex(), "leaf_index": 0, "tree_size": tree.size,
                 "proof": [h.hex() for h in tree.inclusion_proof(0)], "checkpoint": record}
    return credential, inclusion


def docs() -> dict:
    return {DID: did_document(DID, [("k1", encode_ed25519_multikey(ISSUER.public_key().public_bytes_raw()))])}


def verify(credential: dict, inclusion: dict):
    return verify_credential(credential, did_documents=docs(), inclusion=inclusion, trust=Trust.from_json(trust_data()))


# --- proofs of possession (issue 13 item 12) ----------------------------------------------------


def test_a_witness_key_without_a_valid_proof_of_possession_is_refused() -> None:
    with pytest.raises(RogueKey, match="proof of possession"):
        Trust.from_json(trust_data(pops=False, cosigner_keys=False))
    swapped = trust_data(cosigner_keys=False)
    swapped["witnesses"][0]["pop"], swapped["witnesses"][1]["pop"] = (
        swapped["witnesses"][1]["pop"], swapped["witnesses"][0]["pop"])
    with pytest.raises(RogueKey, match="does not verify"):
        Trust.from_json(swapped)
    # what the backend ships in bundles carries the proofs (and the tlog-cosignature keys) and loads again
    shipped = trust_json(Trust.from_json(trust_data()))
    assert [w["pop"] for w in shipped["witnesses"]] == [w["pop"] for w in trust_data()["witnesses"]]
    assert [w["cosigner_vkey"] for w in shipped["witnesses"]] == [c.verifier.vkey for c in cosigners()]
    assert Trust.from_json(shipped) == Trust.from_json(trust_data())


def test_the_backend_refuses_a_trust_file_without_proofs(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(trust_data(pops=False, cosigner_keys=False)))
    seed = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    with pytest.raises(SettingsError, match="proof of possession"):
        chain_client_from_settings(Settings(data_dir=str(tmp_path), chain_url="http://127.0.0.1:1",
                                            chain_submitter_key=seed, chain_trust_file=str(path)))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN", "DATABASE", "PYTHONPATH", "CHAIN"))}


def test_scripts_verify_and_chain_verify_refuse_keys_without_proofs(tmp_path: Path) -> None:
    credential, inclusion = build(AFTER)
    bundle = {"credential": credential, "inclusion": inclusion, "issuers": docs(), "status_lists": {}}
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "good.json").write_text(json.dumps(trust_data()))
    (tmp_path / "nopop.json").write_text(json.dumps(trust_data(pops=False)))
    script = [sys.executable, str(ROOT / "scripts" / "verify"), str(tmp_path / "bundle.json")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_clean_env())

    good = run(*script, "--trust", str(tmp_path / "good.json"), "--json")
    checks = {c["name"]: c for c in json.loads(good.stdout)["credentials"][0]["checks"]}
    assert checks["witness_quorum"]["ok"] is True and "witnessed by 2026-11-02T00:00:00+00:00" in checks[
        "witness_quorum"]["message"], good.stdout
    refused = run(*script, "--trust", str(tmp_path / "nopop.json"))
    assert refused.returncode == 2 and "proof of possession" in refused.stderr, (refused.stdout, refused.stderr)
    bundle["trust"] = trust_data(pops=False)  # the copy inside the bundle is refused the same way
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    embedded = run(*script)
    assert embedded.returncode == 2 and "proof of possession" in embedded.stderr, (embedded.stdout, embedded.stderr)

    (tmp_path / "proof.json").write_text(json.dumps(inclusion))
    chain_cli = [sys.executable, "-m", "chain", "verify", "--bundle", str(tmp_path / "proof.json"),
                 "--log-vkey", LOG.verifier.vkey, "--quorum", "2"]
    keys_only = [f"--witness={d}={bls.SkToPk(sk).hex()}" for d, sk in zip(DEPARTMENTS, SKS, strict=True)]
    with_pop = [f"--witness={d}={bls.SkToPk(sk).hex()}:{bls.PopProve(sk).hex()}"
                for d, sk in zip(DEPARTMENTS, SKS, strict=True)]
    env = {**_clean_env(), "PYTHONPATH": str(ROOT)}
    bare = subprocess.run([*chain_cli, *keys_only], capture_output=True, text=True, timeout=60, env=env)
    assert bare.returncode == 1 and "proof of possession" in bare.stderr, (bare.stdout, bare.stderr)
    ok = subprocess.run([*chain_cli, *with_pop], capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0 and "witnessed by 2026-11-02T00:00:00+00:00" in ok.stdout, (ok.stdout, ok.stderr)


# --- the witnessed time (issue 13 item 11) --------------------------------------------------------


def test_the_witnessed_time_is_checked_and_reported() -> None:
    credential, inclusion = build(AFTER)
    report = verify(credential, inclusion)
    assert report.ok, report.as_dict()
    assert "witnessed by 2026-11-02T00:00:00+00:00" in report.check("witness_quorum").message

    back_dated = copy.deepcopy(inclusion)
    back_dated["checkpoint"]["timestamp"] = AFTER - 30 * 86400  # claim the witnesses saw it a month earlier
    assert verify(credential, back_dated).failed == ["witness_quorum"]
    untimed = copy.deepcopy(inclusion)
    del untimed["checkpoint"]["timestamp"]
    report = verify(credential, untimed)
    assert report.failed == ["witness_quorum"] and "witnessed time" in report.check("witness_quorum").message


def test_a_time_in_the_future_or_before_issuance_fails() -> None:
    from chain.verify import CheckpointTimeInvalid

    future = int(time.time()) + 86400
    credential, inclusion = build(future)
    report = verify(credential, inclusion)
    assert report.failed == ["witness_quorum"] and "no later than now" in report.check("witness_quorum").message
    with pytest.raises(CheckpointTimeInvalid):
        verify_final_checkpoint(inclusion["checkpoint"], Trust.from_json(trust_data()))
    # witnessed a day before the credential says it was issued: it cannot have been
    credential, inclusion = build(AFTER, valid_from="2026-11-03T00:00:00Z")
    report = verify(credential, inclusion)
    assert report.failed == ["witness_quorum"]
    assert "issued before the witnesses saw it" in report.check("witness_quorum").message


def test_the_standard_cosignature_lines_must_agree_with_the_aggregate() -> None:
    from chain.verify import CosignatureInvalid

    credential, inclusion = build(AFTER)
    trust = Trust.from_json(trust_data())
    record = inclusion["checkpoint"]
    assert verify_final_checkpoint(record, trust).size == 2
    lines = record["cosigned_note"].split("\n")
    for i, line in enumerate(lines):
        if line.startswith("\u2014 zl.example/witness/health "):
            blob = bytearray(base64.b64decode(line.rsplit(" ", 1)[1]))
            blob[-1] ^= 1
            lines[i] = line.rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(blob)).decode()
    tampered = dict(record, cosigned_note="\n".join(lines))
    with pytest.raises(CosignatureInvalid, match="tlog-cosignature"):
        verify_final_checkpoint(tampered, trust)
    missing = dict(record, cosigned_note=record["note"])  # a bitmap signer without its standard line
    with pytest.raises(CosignatureInvalid, match="line by zl.example/witness/civil_affairs"):
        verify_final_checkpoint(missing, trust)
