"""Issuer key operations: ``python -m backend.credentials {keygen,rotate,withdraw,did}``.

* ``keygen COMMUNITY [--kid KID]`` prints an ``ISSUER_KEYS`` entry (``COMMUNITY:KID:base64-seed``)
  for production: append it to ISSUER_KEYS, keep the older entries (their keys stay published);
* ``rotate COMMUNITY``: a new key file in ISSUER_KEY_DIR becomes the signing key (development);
* ``withdraw COMMUNITY KID``: drop a compromised key from the DID document (credentials it
  signed stop verifying: re-issue them);
* ``did COMMUNITY``: print the community's DID document.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


async def _with_db(action) -> int:
    from backend import db
    from backend.settings import Settings

    settings = Settings.from_env()
    await db.init(settings, run_migrations=False)
    try:
        return await action(settings)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.credentials", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="print a new ISSUER_KEYS entry")
    keygen.add_argument("community")
    keygen.add_argument("--kid")
    rotate = sub.add_parser("rotate", help="new key file becomes the signing key")
    rotate.add_argument("community")
    withdraw = sub.add_parser("withdraw", help="drop a compromised key from the DID document")
    withdraw.add_argument("community")
    withdraw.add_argument("kid")
    did = sub.add_parser("did", help="print the DID document")
    did.add_argument("community")
    args = parser.parse_args(argv)

    if args.command == "keygen":
        from backend.credentials.keys import new_kid

        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        print(f"{args.community}:{args.kid or new_kid()}:{base64.b64encode(seed).decode()}")
        return 0

    from backend.credentials import keys
    from backend.credentials.models import IssuerKey
    from backend.residents.models import Community

    async def run(settings) -> int:
        community = await Community.get_or_none(code=args.community)
        if community is None:
            print(f"error: no community {args.community!r}", file=sys.stderr)
            return 2
        if args.command == "rotate":
            signer = await keys.rotate_file_key(settings=settings, community=community)
            print(f"signing key is now {signer.verification_method}")
        elif args.command == "withdraw":
            updated = await IssuerKey.filter(community_id=community.id, kid=args.kid, withdrawn_at=None).update(
                withdrawn_at=datetime.now(UTC))
            if not updated:
                print(f"error: no published key {args.kid!r}", file=sys.stderr)
                return 2
            print(f"withdrew {args.kid}: remove it from ISSUER_KEYS / ISSUER_KEY_DIR too")
        document = await keys.community_did_document(settings=settings, community=community)
        print(json.dumps(document, indent=2))
        return 0

    return asyncio.run(_with_db(run))


if __name__ == "__main__":
    sys.exit(main())
