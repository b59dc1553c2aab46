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
                                  "programme": "elderly_subsidy", "method": "self", "certifiedAt": "2026-11-01T00:00:00Z",
                                  "assuranceLevel": "substantial"},
            "credentialStatus": [status_list.status_entry(LISTS[p], p, 100 + i) for p in status_list.PURPOSES],
        }
        credentials.append(eddsa_jcs.add_proof(unsigned, private_key=key, verification_method=method))
    lists = {
        url: eddsa_jcs.add_proof(status_list.status_list_credential(
            list_url=url, issuer=DID, purpose=p, set_indices={104} if p == "revocation" else {103},
            valid_from="2026-11-02T00:00:00Z", valid_until="2099-11-03T00:00:00Z"), private_key=key,
            verification_method=method)
        for p, url in LISTS.items()
    }
    tree = MerkleTree(hash_leaf(leaf_hash(c)) for c in credentials)
    signer = NoteSigner.generate("zl.example/chain")
    checkpoint = Checkpoint(signer.name, tree.size, tree.root())
    sks = [bls.KeyGen(f"unit-{d}".encode().ljust(32, b"-")) for d in DEPARTMENTS]
    signing = [True, False, True]
    witnessed = 1793577600  # 2026-11-02: after the credentials' validFrom
    record = {
        "note": sign_checkpoint(checkpoint, signer),
        "witnesses": [{"department": d, "public_key": bls.SkToPk(sk).hex()} for d, sk in zip(DEPARTMENTS, sks, strict=True)],
        "signer_bitmap": encode_bitmap(signing), "signers": ["civil_affairs", "health"],
        "aggregate_signature": bls.Aggregate([bls.Sign(sk, checkpoint.cosignature_message(witnessed))
                                              for sk, on in zip(sks, signing, strict=True) if on]).hex(),
        "timestamp": witnessed,
    }
    trust = {"log_vkey": signer.verifier.vkey, "quorum": 2,
             "witnesses": [{"department": d, "public_key": bls.SkToPk(sk).hex(), "pop": bls.PopProve(sk).hex()}
                           for d, sk in zip(DEPARTMENTS, sks, strict=True)]}
    inclusions = [{"hash": leaf_hash(c).hex(), "leaf_index": i, "tree_size": tree.size,
                   "proof": [h.hex() for h in tree.inclusion_proof(i)], "checkpoint": record}
                  for i, c in enumerate(credentials)]
    return {"docs": docs, "credentials": credentials, "lists": lists, "inclusions": inclusions, "trust": trust,
            "key": key, "method": method}


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


def test_a_status_list_states_the_status_only_until_its_valid_until(world) -> None:
    """Status list credentials carry validUntil and ttl (issue 13 item 14); a list past its validUntil
    no longer states anything, so the status check fails and says to fetch it again."""
    from datetime import UTC, datetime

    for document in world["lists"].values():
        assert document["validUntil"] == "2099-11-03T00:00:00Z"
        assert document["credentialSubject"]["ttl"] == status_list.LIST_TTL_MS
    trust = Trust.from_json(world["trust"])
    late = verify_credential(world["credentials"][0], did_documents=world["docs"], status_lists=world["lists"],
                             inclusion=world["inclusions"][0], trust=trust, status_at=datetime(2099, 11, 4, tzinfo=UTC))
    assert late.failed == ["status"] and "valid until 2099-11-03T00:00:00Z" in late.check("status").message
    then = verify_credential(world["credentials"][0], did_documents=world["docs"], status_lists=world["lists"],
                             inclusion=world["inclusions"][0], trust=trust, status_at=datetime(2099, 11, 2, tzinfo=UTC))
    assert then.ok


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


def signed_bundle(world, indices: list[int], *, period: str = "2026-11") -> dict:
    """A zhilian-export-bundle/v2 over the given credentials, signed like the export service signs it."""
    from backend.exports.attest import BUNDLE_FORMAT, sign

    creds = [world["credentials"][i] for i in indices]
    rows = [{"row": n + 1, "status": "certified", "method": "self", "certified_at": "2026-11-01T00:00:00Z",
             "credential": c["id"], "credential_status": "valid", "anchored": True} for n, c in enumerate(creds)]
    bundle = {"format": BUNDLE_FORMAT, "issuer": DID,
              "export": {"id": "e-1", "community": "NQ01", "period": period, "programme": "elderly_subsidy",
                         "department": "civil_affairs", "generated_at": "2026-11-20T08:00:00Z"},
              "counts": {"total": len(rows), "credentials": len(creds)}, "files": {"xlsx": "00" * 32}, "rows": rows,
              "issuers": world["docs"], "trust": world["trust"], "status_lists": world["lists"],
              "credentials": [{"credential": world["credentials"][i], "inclusion": world["inclusions"][i]}
                              for i in indices]}
    return sign(bundle, private_key=world["key"], verification_method=world["method"])


def _run_script(tmp_path, data: dict, *extra: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "verify"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN", "DATABASE", "PYTHONPATH"))}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(data))
    return subprocess.run([sys.executable, str(script), str(path), *extra], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=env)


def test_scripts_verify_on_a_local_bundle_names_the_failed_check(world, tmp_path) -> None:
    """The offline CLI in a subprocess: no database, no settings, only the bundle and the keys."""
    bundle = signed_bundle(world, [0, 1, 2])
    ok = _run_script(tmp_path, bundle)
    assert ok.returncode == 0 and "4 verified, 0 failed" in ok.stdout, ok.stdout + ok.stderr
    assert "OK   bundle e-1  (bundle_signature, bundle_period, bundle_complete)" in ok.stdout
    assert "taken from the bundle itself" in ok.stdout
    revoked = _run_script(tmp_path, signed_bundle(world, [0, 1, 2, 4]))
    assert revoked.returncode == 1 and "status: expected revocation bit 104" in revoked.stdout
    tampered = copy.deepcopy(bundle)
    tampered["credentials"][1]["credential"]["credentialSubject"]["method"] = "home_visit"
    result = _run_script(tmp_path, tampered, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [c["failed"] for c in report["credentials"]] == [["bundle_signature"], [], ["signature", "inclusion"], []]
    unattested = _run_script(tmp_path, {"credentials": []})
    assert unattested.returncode == 1 and "bundle_signature: expected a signed zhilian-export-bundle/v2" in unattested.stdout


def test_the_forged_bundle_of_the_issue_fails_with_named_checks(world, tmp_path) -> None:
    """Issue 13 item 10: the export's period changed to another month and one credential deleted, no
    manifest. Before, scripts/verify printed '3 verified, 0 failed' and exited 0."""
    genuine = signed_bundle(world, [0, 1, 2])
    forged = copy.deepcopy(genuine)
    forged["export"]["period"] = "2026-10"
    del forged["credentials"][2]
    result = _run_script(tmp_path, forged)
    assert result.returncode == 1, result.stdout
    assert "FAIL bundle e-1  bundle_signature: expected the bundle's eddsa-jcs-2022 proof" in result.stdout
    assert "FAIL bundle e-1  bundle_period: expected every credential to be of the bundle's period 2026-10" in result.stdout
    assert "FAIL bundle e-1  bundle_complete: expected 3 credentials (signed counts), found 2" in result.stdout
    # stripping the signature to pass it off as an old unsigned bundle: nothing attests it
    downgraded = {k: v for k, v in forged.items() if k not in ("proof", "issuer")}
    downgraded["format"] = "zhilian-export-bundle/v1"
    result = _run_script(tmp_path, downgraded)
    assert result.returncode == 1, result.stdout
    assert "bundle_signature: expected a signed zhilian-export-bundle/v2 bundle or a verified manifest" in result.stdout
    assert "bundle_period: expected every credential" in result.stdout
    # the same forgery re-signed with another key: not the credentials' issuer key
    other = Ed25519PrivateKey.generate()
    from backend.exports.attest import sign

    resigned = sign({k: v for k, v in forged.items() if k != "proof"}, private_key=other,
                    verification_method=world["method"])
    result = _run_script(tmp_path, resigned)
    assert result.returncode == 1 and "bundle_signature: expected the bundle's eddsa-jcs-2022 proof" in result.stdout


def test_an_unsigned_v1_bundle_still_verifies_with_its_manifest(world) -> None:
    """Backward reading: bundles made before v2 carry no signature; their signed manifest attests them."""
    import hashlib

    from backend.exports.attest import verify_export

    v1 = {"format": "zhilian-export-bundle/v1", "issuers": world["docs"], "trust": world["trust"],
          "status_lists": world["lists"],
          "export": {"id": "e-0", "period": "2026-11", "programme": "elderly_subsidy",
                     "generated_at": "2026-11-20T08:00:00Z"},
          "credentials": [{"credential": world["credentials"][i], "inclusion": world["inclusions"][i]}
                          for i in (0, 1)]}
    data = json.dumps(v1).encode()
    manifest = eddsa_jcs.add_proof({"format": "zhilian-export-manifest/v1", "export_id": "e-0", "issuer": DID,
                                    "files": {"json": hashlib.sha256(data).hexdigest()}},
                                   private_key=world["key"], verification_method=world["method"])
    tree_trust = Trust.from_json(world["trust"])
    verdict = verify_export(v1, did_documents=world["docs"], trust=tree_trust,
                            manifest_document={"manifest": manifest, "inclusion": None}, bundle_bytes=data,
                            require_anchor=False)
    assert verdict.ok, [r.as_dict() for r in verdict.reports if not r.ok]
    assert "attested by the signed manifest" in verdict.bundle.check("bundle_signature").message
    alone = verify_export(v1, did_documents=world["docs"], trust=tree_trust, require_anchor=False)
    assert alone.bundle.failed == ["bundle_signature"] and alone.credentials[0].ok
