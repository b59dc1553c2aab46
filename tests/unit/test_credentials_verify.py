"""The offline verifier on locally built evidence (no server, no processes): each check by name."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.credentials import eddsa_jcs, status_list
from backend.credentials.anchor import chain_client_from_settings
from backend.credentials.did import did_document, did_web
from backend.credentials.multikey import encode_ed25519_multikey
from backend.credentials.verify import CREDENTIAL_TYPE, leaf_hash, verify_credential
from backend.settings import Settings, SettingsError
from chain import bls
from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from chain.merkle import MerkleTree, hash_leaf
from chain.verify import Trust, encode_bitmap

DID = did_web("https://zl.example", "communities", "NQ01")
LISTS = {p: f"https://zl.example/credentials/status/NQ01/0/{p}" for p in status_list.PURPOSES}
DEPARTMENTS = ("civil_affairs", "social_security", "health")


@pytest.fixture(scope="module")
def world():
    key = Ed25519PrivateKey.generate()
    method = f"{DID}#k1"
    docs = {DID: did_document(DID, [("k1", encode_ed25519_multikey(key.public_key().public_bytes_raw()))])}
    credentials = []
    for i in range(5):
        unsigned = {
            "@context": [status_list.VC_CONTEXT], "id": f"urn:uuid:00000000-0000-0000-0000-00000000000{i}",
            "type": ["VerifiableCredential", CREDENTIAL_TYPE], "issuer": DID, "validFrom": "2026-11-01T00:00:00Z",
            "credentialSubject": {"id": f"urn:uuid:10000000-0000-0000-0000-00000000000{i}", "period": "2026-11",
                                  "method": "self", "certifiedAt": "2026-11-01T00:00:00Z",
                                  "assuranceLevel": "substantial"},
            "credentialStatus": [status_list.status_entry(LISTS[p], p, 100 + i) for p in status_list.PURPOSES],
        }
        credentials.append(eddsa_jcs.add_proof(unsigned, private_key=key, verification_method=method))
    lists = {
        url: eddsa_jcs.add_proof(status_list.status_list_credential(
            list_url=url, issuer=DID, purpose=p, set_indices={104} if p == "revocation" else {103},
            valid_from="2026-11-02T00:00:00Z"), private_key=key, verification_method=method)
        for p, url in LISTS.items()
    }
    tree = MerkleTree(hash_leaf(leaf_hash(c)) for c in credentials)
    signer = NoteSigner.generate("zl.example/chain")
    checkpoint = Checkpoint(signer.name, tree.size, tree.root())
    sks = [bls.KeyGen(f"unit-{d}".encode().ljust(32, b"-")) for d in DEPARTMENTS]
    signing = [True, False, True]
    record = {
        "note": sign_checkpoint(checkpoint, signer),
        "witnesses": [{"department": d, "public_key": bls.SkToPk(sk).hex()} for d, sk in zip(DEPARTMENTS, sks, strict=True)],
        "signer_bitmap": encode_bitmap(signing), "signers": ["civil_affairs", "health"],
        "aggregate_signature": bls.Aggregate([bls.Sign(sk, checkpoint.cosignature_message())
                                              for sk, on in zip(sks, signing, strict=True) if on]).hex(),
    }
    trust = {"log_vkey": signer.verifier.vkey, "quorum": 2,
             "witnesses": [{"department": d, "public_key": bls.SkToPk(sk).hex()} for d, sk in zip(DEPARTMENTS, sks, strict=True)]}
    inclusions = [{"hash": leaf_hash(c).hex(), "leaf_index": i, "tree_size": tree.size,
                   "proof": [h.hex() for h in tree.inclusion_proof(i)], "checkpoint": record}
                  for i, c in enumerate(credentials)]
    return {"docs": docs, "credentials": credentials, "lists": lists, "inclusions": inclusions, "trust": trust}


def run(world, i: int = 0, *, credential=None, inclusion=None, trust=None, docs=None, lists=None):
    return verify_credential(
        credential if credential is not None else world["credentials"][i],
        did_documents=docs if docs is not None else world["docs"],
        status_lists=lists if lists is not None else world["lists"],
        inclusion=inclusion if inclusion is not None else world["inclusions"][i],
        trust=Trust.from_json(trust or world["trust"]),
    )


def test_all_checks_pass(world) -> None:
    report = run(world)
    assert report.ok and report.failed == []
    assert [c.name for c in report.checks] == ["format", "issuer_key", "signature", "status", "checkpoint",
                                               "witness_quorum", "inclusion"]


def test_status_bits_name_their_purpose(world) -> None:
    assert run(world, 4).check("status").error == "CredentialRevoked"
    assert run(world, 3).check("status").error == "CredentialSuspended"
    missing = run(world, lists={})
    assert missing.failed == ["status"] and "missing" in missing.check("status").message


def test_chain_failures_are_named(world) -> None:
    quorum3 = dict(world["trust"], quorum=3)
    assert run(world, trust=quorum3).failed == ["witness_quorum"]
    other_log = dict(world["trust"], log_vkey=NoteSigner.generate("zl.example/chain").verifier.vkey)
    assert run(world, trust=other_log).failed == ["checkpoint"]
    moved = copy.deepcopy(world["inclusions"][1])
    moved["leaf_index"] = 2
    report = run(world, 1, inclusion=moved)
    assert report.failed == ["inclusion"] and "expected" in report.check("inclusion").message
    none = verify_credential(world["credentials"][0], did_documents=world["docs"], status_lists=world["lists"])
    assert none.failed == ["inclusion"] and none.check("inclusion").error == "AnchorMissing"
    no_trust = verify_credential(world["credentials"][0], did_documents=world["docs"], status_lists=world["lists"],
                                 inclusion=world["inclusions"][0])
    assert no_trust.failed == ["checkpoint"] and "trust roots" in no_trust.check("checkpoint").message
    allowed = verify_credential(world["credentials"][0], did_documents=world["docs"], status_lists=world["lists"],
                                require_anchor=False)
    assert allowed.ok


def test_issuer_and_format_failures(world) -> None:
    assert run(world, docs={}).failed == ["issuer_key", "status"]  # the lists are signed by the same issuer
    not_a_vc = copy.deepcopy(world["credentials"][0])
    not_a_vc["type"] = ["VerifiableCredential"]
    assert run(world, credential=not_a_vc).failed == ["format"]


def test_a_shared_cache_gives_the_same_answers(world) -> None:
    cache: dict = {}
    answers = [verify_credential(c, did_documents=world["docs"], status_lists=world["lists"],
                                 inclusion=world["inclusions"][i], trust=Trust.from_json(world["trust"]), cache=cache).failed
               for i, c in enumerate(world["credentials"])]
    assert answers == [[], [], [], ["status"], ["status"]]


def test_chain_client_from_settings(tmp_path) -> None:
    assert chain_client_from_settings(Settings(data_dir=str(tmp_path))) is None
    with pytest.raises(SettingsError):
        chain_client_from_settings(Settings(data_dir=str(tmp_path), chain_url="http://127.0.0.1:1"))
    trust_path = tmp_path / "trust.json"
    trust_path.write_text(json.dumps({"log_vkey": NoteSigner.generate("x.example/log").verifier.vkey, "quorum": 2,
                                      "witnesses": []}))
    seed = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()
    client = chain_client_from_settings(Settings(data_dir=str(tmp_path), chain_url="http://127.0.0.1:1",
                                                 chain_submitter_key=seed, chain_trust_file=str(trust_path)))
    assert client.submitter == "backend" and client.trust.quorum == 2


def test_scripts_verify_on_a_local_bundle_names_the_failed_check(world, tmp_path) -> None:
    """The offline CLI in a subprocess: no database, no settings, only the bundle and the keys."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "verify"
    bundle = {"format": "zhilian-export-bundle/v1", "issuers": world["docs"], "trust": world["trust"],
              "status_lists": world["lists"],
              "credentials": [{"credential": c, "inclusion": world["inclusions"][i]}
                              for i, c in enumerate(world["credentials"][:3])]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN", "DATABASE", "PYTHONPATH"))}

    def run(data: dict, *extra: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(data))
        return subprocess.run([sys.executable, str(script), str(path), *extra], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, env=env)

    ok = run(bundle)
    assert ok.returncode == 0 and "3 verified, 0 failed" in ok.stdout, ok.stdout + ok.stderr
    assert "taken from the bundle itself" in ok.stdout
    revoked = run(dict(bundle, credentials=bundle["credentials"] + [
        {"credential": world["credentials"][4], "inclusion": world["inclusions"][4]}]))
    assert revoked.returncode == 1 and "status: expected revocation bit 104" in revoked.stdout
    tampered = copy.deepcopy(bundle)
    tampered["credentials"][1]["credential"]["credentialSubject"]["method"] = "home_visit"
    result = run(tampered, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [c["failed"] for c in report["credentials"]] == [[], ["signature", "inclusion"], []]
    assert run({"credentials": []}).returncode == 2
