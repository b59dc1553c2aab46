"""OAuth client administration: `python -m backend.oauth create-client|list-clients`.

    python -m backend.oauth create-client --name 市民云 --redirect-uri https://portal.example/cb \\
        --scope openid --scope profile --scope certification:read [--public] [--sector-identifier HOST]

The client secret of a confidential client is printed once; only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from backend import db
from backend.audit.service import Actor
from backend.errors import ApiError
from backend.oauth import service
from backend.settings import Settings

CLI_ACTOR = Actor("system", "cli:backend.oauth")


async def _run(settings: Settings, args: argparse.Namespace) -> dict:
    await db.init(settings, run_migrations=False)
    try:
        if args.command == "create-client":
            client, secret = await service.create_client(
                name=args.name, redirect_uris=args.redirect_uri, scopes=args.scope, confidential=not args.public,
                sector_identifier=args.sector_identifier, actor=CLI_ACTOR, id_token_alg=args.id_token_alg,
            )
            view = service.client_view(client)
            if secret:
                view["client_secret"] = secret
            return view
        return {"items": [service.client_view(c) for c in await service.list_clients()]}
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.oauth", description="OAuth clients of the Zhilian provider")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-client", help="register a portal (audited); prints its secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", action="append", required=True, help="exact redirect URI (repeatable)")
    create.add_argument("--scope", action="append", required=True, choices=list(service.SCOPES), help="repeatable")
    create.add_argument("--public", action="store_true", help="a public client (no secret; PKCE only)")
    create.add_argument("--sector-identifier", help="pairwise sector (default: the redirect URIs' host)")
    create.add_argument("--id-token-alg", choices=list(service.ID_TOKEN_ALGS),
                        help="id_token_signed_response_alg (default: the provider's signing algorithm)")
    sub.add_parser("list-clients", help="list registered clients")
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(_run(Settings.from_env(), args))
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if result.get("client_secret"):
        print("the client secret is shown only now: store it in the portal's configuration", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
