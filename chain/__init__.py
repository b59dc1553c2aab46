"""Zhilian chain: a witnessed, append-only Merkle log of hashes (DESIGN §6).

* ``merkle``     RFC 9162 §2.1 (RFC 6962) hashing, inclusion and consistency proofs
* ``checkpoint`` C2SP signed-note + tlog-checkpoint, Ed25519 log key
* ``bls``        BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_ (py-ecc reference, fast arkworks backend)
* ``log``        group-committed storage (SQLite or PostgreSQL) + in-memory tree
* ``witness``    a department witness (C2SP tlog-witness shape, BLS cosignature)
* ``sequencer``  checkpoints, witness round-trips, quorum, aggregation
* ``server``     Sanic apps of the sequencer and of a witness
* ``client``     ``ChainClient`` for the backend;  ``verify``  offline verification
* ``devstack``   sequencer + three witnesses as child processes;  ``keys``  key files, request auth

Run ``python -m chain --help``.
"""
