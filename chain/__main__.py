"""Command line: ``python -m chain {sequencer,witness,verify,keygen,recover,devstack} ...``.

Every flag has an environment default (``ZHILIAN_CHAIN_*`` for the sequencer,
``ZHILIAN_WITNESS_*`` for a witness); keys are created in the data directory on
first run (files 0600).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .witness import DEPARTMENTS


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _run_sequencer(args: argparse.Namespace) -> int:
    from .sequencer import SequencerSettings
    from .server import create_app

    settings = SequencerSettings(
        data_dir=args.data_dir,
        database_url=args.database_url,
        origin=args.origin,
        quorum=args.quorum,
        departments=tuple(d for d in args.departments.split(",") if d),
        checkpoint_interval=args.checkpoint_interval,
        witness_timeout=args.witness_timeout,
        host=args.host,
        port=args.port,
    )
    app = create_app(settings)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)
    return 0


def _run_witness(args: argparse.Namespace) -> int:
    from .server import WitnessSettings, create_witness_app

    token = args.admin_token
    if not token and args.admin_token_file:
        token = Path(args.admin_token_file).read_text().strip()
    log_vkey = args.log_vkey
    if not log_vkey and args.log_vkey_file:
        log_vkey = Path(args.log_vkey_file).read_text().strip()
    data_dir = args.data_dir or Path(f"var/chain/witness-{args.department}")
    settings = WitnessSettings(
        department=args.department,
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        sequencer_url=args.sequencer_url,
        log_vkey=log_vkey,
        admin_token=token,
        public_url=args.public_url,
        cosigner_name=args.cosigner_name,
        max_skew=args.max_skew,
    )
    app = create_witness_app(settings)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    from .checkpoint import NoteError
    from .merkle import MerkleError
    from .verify import Trust, VerificationError, verify_inclusion_bundle, witnessed_time

    bundle = json.loads(Path(args.bundle).read_text())
    trust_data = json.loads(Path(args.trust).read_text()) if args.trust else {"witnesses": []}
    if args.log_vkey:
        trust_data["log_vkey"] = args.log_vkey
    if args.witness:
        trust_data["witnesses"] = []
        for spec in args.witness:
            department, _, keys_ = spec.partition("=")
            public_key, _, pop = keys_.partition(":")
            trust_data["witnesses"].append({"department": department, "public_key": public_key, "pop": pop})
    if args.quorum is not None:
        trust_data["quorum"] = args.quorum
    leaf = bytes.fromhex(args.hash or bundle["hash"])
    try:
        trust = Trust.from_json(trust_data)
        checkpoint = verify_inclusion_bundle(bundle, leaf, trust)
    except (VerificationError, MerkleError, NoteError, KeyError, ValueError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    from datetime import UTC, datetime

    signers = ", ".join(bundle["checkpoint"].get("signers", []))
    seen = datetime.fromtimestamp(witnessed_time(bundle["checkpoint"]), UTC).isoformat(timespec="seconds")
    print(
        f"OK: {leaf.hex()} is leaf {bundle['leaf_index']} of {checkpoint.origin} size {checkpoint.size}, "
        f"cosigned by {signers} (quorum {trust.quorum}), witnessed by {seen}"
    )
    return 0


def _run_keygen(args: argparse.Namespace) -> int:
    from . import keys

    data_dir: Path = args.data_dir
    out: dict[str, str] = {}
    if args.role == "sequencer":
        signer = keys.log_signer(data_dir, args.origin)
        keys.admin_token(data_dir)
        out["log_vkey"] = signer.verifier.vkey
        for name in args.submitter or []:
            out[f"submitter:{name}"] = str(keys.submitter_key(data_dir, name))
    else:
        from . import bls

        sk = keys.witness_secret_key(data_dir)
        out["public_key"] = bls.SkToPk(sk).hex()
        out["pop"] = bls.PopProve(sk).hex()
        name = args.cosigner_name or (keys.witness_cosigner_name(args.department) if args.department else None)
        if name:
            out["cosigner_vkey"] = keys.witness_cosigner_key(data_dir, name).verifier.vkey
    print(json.dumps(out, indent=2))
    return 0


def _run_recover(args: argparse.Namespace) -> int:
    import asyncio

    from .recover import RecoveryError, parse_leaves, recover
    from .sequencer import SequencerSettings

    leaves = []
    try:
        for source in args.leaves:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
            leaves += parse_leaves(text, source)
        witness_urls = dict(spec.split("=", 1) for spec in args.witness or [])
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = SequencerSettings(data_dir=args.data_dir, database_url=args.database_url, origin=args.origin)
    try:
        report = asyncio.run(recover(settings, leaves, witness_urls=witness_urls, fill_gaps=args.fill_gaps,
                                     dry_run=args.dry_run))
    except RecoveryError as exc:
        print(json.dumps({"recovered": False, "error": str(exc), **exc.state}, indent=2, default=str))
        return 1
    print(json.dumps({"recovered": True, **report}, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("ZHILIAN_CHAIN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m chain", description="Zhilian witnessed Merkle log")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sequencer", help="run the log sequencer (HTTP API)")
    p.add_argument(
        "--data-dir", type=Path, default=Path(_env("ZHILIAN_CHAIN_DATA_DIR", "var/chain/sequencer"))
    )
    p.add_argument(
        "--database-url",
        default=_env("ZHILIAN_CHAIN_DATABASE_URL"),
        help="postgresql://… or sqlite:///path (default: sqlite in the data dir)",
    )
    p.add_argument("--host", default=_env("ZHILIAN_CHAIN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("ZHILIAN_CHAIN_PORT", "8650")))
    p.add_argument("--origin", default=_env("ZHILIAN_CHAIN_ORIGIN", "zhilian.local/chain"))
    p.add_argument("--quorum", type=int, default=int(_env("ZHILIAN_CHAIN_QUORUM", "2")))
    p.add_argument("--departments", default=_env("ZHILIAN_CHAIN_DEPARTMENTS", ",".join(DEPARTMENTS)))
    p.add_argument(
        "--checkpoint-interval", type=float, default=float(_env("ZHILIAN_CHAIN_CHECKPOINT_INTERVAL", "1.0"))
    )
    p.add_argument(
        "--witness-timeout", type=float, default=float(_env("ZHILIAN_CHAIN_WITNESS_TIMEOUT", "2.0"))
    )
    p.set_defaults(func=_run_sequencer)

    p = sub.add_parser("witness", help="run one department witness")
    p.add_argument(
        "--department",
        required=_env("ZHILIAN_WITNESS_DEPARTMENT") is None,
        default=_env("ZHILIAN_WITNESS_DEPARTMENT"),
    )
    p.add_argument(
        "--data-dir", type=Path, default=Path(d) if (d := _env("ZHILIAN_WITNESS_DATA_DIR")) else None
    )
    p.add_argument("--host", default=_env("ZHILIAN_WITNESS_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("ZHILIAN_WITNESS_PORT", "8651")))
    p.add_argument("--sequencer-url", default=_env("ZHILIAN_CHAIN_URL"))
    p.add_argument(
        "--log-vkey", default=_env("ZHILIAN_CHAIN_LOG_VKEY"), help="log verifier key (C2SP note vkey)"
    )
    p.add_argument("--log-vkey-file")
    p.add_argument("--admin-token", default=_env("ZHILIAN_CHAIN_ADMIN_TOKEN"))
    p.add_argument("--admin-token-file")
    p.add_argument("--public-url", default=_env("ZHILIAN_WITNESS_PUBLIC_URL"))
    p.add_argument(
        "--cosigner-name", default=_env("ZHILIAN_WITNESS_COSIGNER_NAME"),
        help="C2SP tlog-cosignature key name (default zhilian.local/witness/<department>)",
    )
    p.add_argument(
        "--max-skew", type=int, default=int(_env("ZHILIAN_WITNESS_MAX_SKEW", "30")),
        help="seconds a proposed time may differ from this witness's clock",
    )
    p.set_defaults(func=_run_witness)

    p = sub.add_parser("verify", help="check a leaf against a final checkpoint offline")
    p.add_argument("--bundle", required=True, help="JSON from GET /v1/inclusion/<hash>")
    p.add_argument("--hash", help="the 32-byte leaf hash (hex); default: the bundle's")
    p.add_argument("--trust", help="JSON {log_vkey, quorum, witnesses: [{department, public_key}]}")
    p.add_argument("--log-vkey")
    p.add_argument(
        "--witness", action="append",
        help="department=<hex public key>:<hex proof of possession>, in bitmap order (repeat)",
    )
    p.add_argument("--quorum", type=int)
    p.set_defaults(func=_run_verify)

    p = sub.add_parser("keygen", help="create keys in a data dir (idempotent)")
    p.add_argument("role", choices=["sequencer", "witness"])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--origin", default=_env("ZHILIAN_CHAIN_ORIGIN", "zhilian.local/chain"))
    p.add_argument("--submitter", action="append", help="also create this submitter key (sequencer)")
    p.add_argument("--department", help="witness: also create its tlog-cosignature key with the default name")
    p.add_argument("--cosigner-name", help="witness: the tlog-cosignature key name")
    p.set_defaults(func=_run_keygen)

    p = sub.add_parser("recover", help="rebuild lost leaves from the submitters' records (sequencer stopped)")
    p.add_argument(
        "--data-dir", type=Path, default=Path(_env("ZHILIAN_CHAIN_DATA_DIR", "var/chain/sequencer"))
    )
    p.add_argument("--database-url", default=_env("ZHILIAN_CHAIN_DATABASE_URL"))
    p.add_argument("--origin", default=_env("ZHILIAN_CHAIN_ORIGIN", "zhilian.local/chain"))
    p.add_argument(
        "--leaves", action="append", required=True,
        help="JSON lines {index, hash, label, submitter} from a submitter ('-' for stdin; repeat per submitter)",
    )
    p.add_argument("--witness", action="append", help="department=url, to ask a witness not registered in the store")
    p.add_argument("--fill-gaps", action="store_true",
                   help="seal acknowledged indices no submitter recorded with filler leaves")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    p.set_defaults(func=_run_recover)

    p = sub.add_parser("devstack", help="sequencer + three witnesses as child processes", add_help=False)
    p.set_defaults(func=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "devstack":
        from .devstack import main as devstack_main

        return devstack_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
