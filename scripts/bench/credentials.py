"""Benchmark of credentials: issue (sign), verify (signature only), verify in full (with proofs).

    .venv/bin/python scripts/bench/credentials.py [--count N] [--full N] [--db-count N] [--database-url URL]

In-process and offline, no server: the same functions the backend and ``scripts/verify`` run.

* issue: build the VC 2.0 document, add the eddsa-jcs-2022 proof (RFC 8785 + Ed25519),
  compute the chain leaf SHA-256(JCS(credential));
* verify_sig: format, issuer key from the DID document, eddsa-jcs-2022 proof;
* verify_full (cold, every credential on its own): the above plus both Bitstring Status Lists (each a signed 16 KB GZIP list:
  its proof, expansion, the bit), the log-signed checkpoint, the BLS aggregate of 2 of 3
  witnesses and the Merkle inclusion proof in a tree of N leaves (built here with ``chain``'s
  own merkle, checkpoint and bls modules, like the sequencer does);
* verify_bundle: the same over one bundle, each status list and checkpoint checked once;
* verify_export / bundle_sign: a signed department bundle of those credentials, checked whole
  (bundle signature, period, completeness, then every credential: what ``scripts/verify`` does).

* issue_db (``--db-count``, default 300; 0 skips): ``service.issue_for_certification`` end to end on
  a temporary SQLite file (or ``--database-url``): status index allocation, signing, the
  credential row and its anchoring outbox event, as the outbox handler runs it.

The last line is machine-readable (issue = signing in process, as the bundle numbers):

    credentials: issue_per_s=… verify_sig_per_s=… verify_full_per_s=…
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from backend.credentials import eddsa_jcs, status_list  # noqa: E402
from backend.credentials.did import did_document, did_web  # noqa: E402
from backend.credentials.multikey import encode_ed25519_multikey  # noqa: E402
from backend.credentials.verify import CREDENTIAL_TYPE, leaf_hash, verify_credential  # noqa: E402
from chain import bls  # noqa: E402
from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint  # noqa: E402
from chain.merkle import MerkleTree, hash_leaf  # noqa: E402
from chain.verify import Trust, encode_bitmap  # noqa: E402

PUBLIC_URL = "https://zhilian.example"
DEPARTMENTS = ("civil_affairs", "social_security", "health")


def document(did: str, index: int) -> dict:
    lists = {p: f"{PUBLIC_URL}/credentials/status/NQ01/0/{p}" for p in status_list.PURPOSES}
    return {
        "@context": [status_list.VC_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": did,
        "validFrom": "2026-11-20T08:00:00Z",
        "credentialSubject": {"id": f"urn:uuid:{uuid.uuid4()}", "period": "2026-11", "programme": "elderly_subsidy",
                              "method": "self", "certifiedAt": "2026-11-20T08:00:00Z", "assuranceLevel": "substantial"},
        "credentialStatus": [status_list.status_entry(lists[p], p, index) for p in status_list.PURPOSES],
    }


def rate(label: str, count: int, seconds: float) -> float:
    per_s = count / seconds
    print(f"{label:<12} {count:>6} in {seconds:6.2f} s  = {per_s:10.1f}/s  ({1000 * seconds / count:.3f} ms each)")
    return per_s


async def issue_with_database(count: int, database_url: str) -> float:
    """Issue `count` credentials through the service on a fresh database (the outbox handler's path)."""
    import tempfile
    from datetime import UTC, datetime

    from backend import db
    from backend.certification import periods
    from backend.certification.models import Certification, Method
    from backend.credentials import service
    from backend.residents.models import Resident
    from backend.residents.service import ensure_community
    from backend.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=data_dir, database_url=database_url, public_url=PUBLIC_URL)
        await db.init(settings, run_migrations=True)
        try:
            tag = uuid.uuid4().hex[:6]
            community = await ensure_community(code=f"B{tag}", name="基准社区")
            period = await periods.open_period(community_id=community.id, month="2026-11")
            residents = [Resident(public_id=uuid.uuid4(), community_id=community.id, name="测试", birth_date="1940-01-01",
                                  national_id_cipher="x", national_id_index=f"{tag}-{i}", id_suffix_index="x", sex="F",
                                  programme_tier="80-89") for i in range(count)]
            await Resident.bulk_create(residents, batch_size=500)
            ids = await Resident.filter(community_id=community.id).values_list("id", flat=True)
            now = datetime.now(UTC)
            await Certification.bulk_create([Certification(resident_id=rid, period_id=period.id, method=Method.SELF,
                                                           certified_at=now) for rid in ids], batch_size=500)
            cert_ids = await Certification.filter(period_id=period.id).values_list("id", flat=True)
            await service.issue_for_certification(certification_id=cert_ids[0], settings=settings)  # key file, warm-up
            started = time.perf_counter()
            for cert_id in cert_ids[1:]:
                await service.issue_for_certification(certification_id=cert_id, settings=settings)
            per_s = rate("issue_db", len(cert_ids) - 1, time.perf_counter() - started)
        finally:
            await db.close()
    return per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="credentials issued (and leaves in the tree)")
    parser.add_argument("--full", type=int, default=200, help="full verifications timed (each runs a pairing)")
    parser.add_argument("--db-count", type=int, default=300, help="certifications issued through the database")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args(argv)

    key = Ed25519PrivateKey.generate()
    did = did_web(PUBLIC_URL, "communities", "NQ01")
    multikey = encode_ed25519_multikey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    did_documents = {did: did_document(did, [("key-1", multikey)])}
    method = f"{did}#key-1"

    started = time.perf_counter()
    credentials = []
    for i in range(args.count):
        signed = eddsa_jcs.add_proof(document(did, i), private_key=key, verification_method=method)
        credentials.append((signed, leaf_hash(signed)))
    issue = rate("issue", args.count, time.perf_counter() - started)

    started = time.perf_counter()
    for signed, _ in credentials:
        assert verify_credential(signed, did_documents=did_documents, check_anchor=False).ok
    verify_sig = rate("verify_sig", args.count, time.perf_counter() - started)

    # The evidence a full verification checks: status lists, a final checkpoint, proofs.
    lists = {}
    for purpose in status_list.PURPOSES:
        url = f"{PUBLIC_URL}/credentials/status/NQ01/0/{purpose}"
        unsigned = status_list.status_list_credential(list_url=url, issuer=did, purpose=purpose,
                                                      set_indices={args.count + 5}, valid_from=eddsa_jcs.now_xsd(),
                                                      valid_until="2099-12-31T00:00:00Z")
        lists[url] = eddsa_jcs.add_proof(unsigned, private_key=key, verification_method=method)
    tree = MerkleTree(hash_leaf(leaf) for _, leaf in credentials)
    signer = NoteSigner.generate("zhilian.example/chain")
    checkpoint = Checkpoint(signer.name, tree.size, tree.root())
    secret_keys = [bls.KeyGen(f"bench-witness-{d}".encode().ljust(32, b".")) for d in DEPARTMENTS]
    public_keys = [bls.SkToPk(sk) for sk in secret_keys]
    signing = [True, True, False]
    witnessed = int(time.time())
    aggregate = bls.Aggregate([bls.Sign(sk, checkpoint.cosignature_message(witnessed))
                               for sk, on in zip(secret_keys, signing, strict=True) if on])
    record = {
        "origin": signer.name, "size": tree.size, "root_hash": base64.b64encode(tree.root()).decode(),
        "note": sign_checkpoint(checkpoint, signer), "quorum": 2,
        "witnesses": [{"department": d, "public_key": pk.hex()} for d, pk in zip(DEPARTMENTS, public_keys, strict=True)],
        "signer_bitmap": encode_bitmap(signing), "signers": list(DEPARTMENTS[:2]),
        "aggregate_signature": aggregate.hex(), "timestamp": witnessed,
    }
    trust = Trust.from_json({"log_vkey": signer.verifier.vkey, "quorum": 2,
                             "witnesses": [{"department": d, "public_key": pk.hex(), "pop": bls.PopProve(sk).hex()}
                                           for d, pk, sk in zip(DEPARTMENTS, public_keys, secret_keys, strict=True)]})
    full = min(args.full, args.count)
    bundles = [
        {"hash": leaf.hex(), "leaf_index": i, "tree_size": tree.size,
         "proof": [h.hex() for h in tree.inclusion_proof(i)], "checkpoint": record}
        for i, (_, leaf) in enumerate(credentials[:full])
    ]
    started = time.perf_counter()
    for (signed, _), inclusion in zip(credentials[:full], bundles, strict=True):
        report = verify_credential(signed, did_documents=did_documents, status_lists=lists, inclusion=inclusion,
                                   trust=trust)
        assert report.ok, report.as_dict()
    verify_full = rate("verify_full", full, time.perf_counter() - started)
    started = time.perf_counter()
    shared: dict = {}  # what scripts/verify does over a bundle: each list and checkpoint checked once
    for (signed, _), inclusion in zip(credentials[:full], bundles, strict=True):
        assert verify_credential(signed, did_documents=did_documents, status_lists=lists, inclusion=inclusion,
                                 trust=trust, cache=shared).ok
    rate("verify_bundle", full, time.perf_counter() - started)
    # a department export of those credentials: the bundle's own signature, then everything verify_export checks
    from backend.exports import attest

    rows = [{"row": i + 1, "status": "certified", "method": "self", "certified_at": "2026-11-20T08:00:00Z",
             "credential": signed["id"], "credential_status": "valid", "anchored": True}
            for i, (signed, _) in enumerate(credentials[:full])]
    export = {"format": attest.BUNDLE_FORMAT, "issuer": did,
              "export": {"id": "bench", "community": "NQ01", "period": "2026-11", "programme": "elderly_subsidy",
                         "department": "civil_affairs", "generated_at": "2026-11-20T09:00:00Z"},
              "counts": {"total": full, "credentials": full}, "files": {"xlsx": "00" * 32}, "rows": rows,
              "issuers": did_documents, "trust": None, "status_lists": lists,
              "credentials": [{"credential": signed, "inclusion": inclusion}
                              for (signed, _), inclusion in zip(credentials[:full], bundles, strict=True)]}
    started = time.perf_counter()
    signed_export = attest.sign(export, private_key=key, verification_method=method)
    sign_s = time.perf_counter() - started
    started = time.perf_counter()
    verdict = attest.verify_export(signed_export, did_documents=did_documents, trust=trust)
    assert verdict.ok, [r.as_dict() for r in verdict.reports if not r.ok]
    rate("verify_export", full, time.perf_counter() - started)
    print(f"bundle_sign  {full:>6} credentials signed as one bundle in {1000 * sign_s:.1f} ms")
    print(f"bls backend: {type(bls.BACKEND).__name__}, "
          f"tree size {tree.size}, status lists 2 x {status_list.MIN_ENTRIES} entries")
    if args.db_count:
        import asyncio

        asyncio.run(issue_with_database(args.db_count, args.database_url))
    print(f"credentials: issue_per_s={issue:.1f} verify_sig_per_s={verify_sig:.1f} verify_full_per_s={verify_full:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
