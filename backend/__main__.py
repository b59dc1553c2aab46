"""Backend command line: `python -m backend serve|migrate|seed-demo|create-staff|disable-staff|settings|chain-leaves`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import shlex
import sys
from dataclasses import fields

from backend import db
from backend.auth.models import Role
from backend.errors import ApiError
from backend.settings import Settings

SECRET_SETTINGS = frozenset(f.name for f in fields(Settings) if not f.repr)



async def _with_db(settings: Settings, work) -> object:
    await db.init(settings, run_migrations=False)
    try:
        return await work()
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description="Zhilian backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--seed-demo", action="store_true", help="seed the demo community before serving")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed-demo", help="seed the demo community, staff and residents (idempotent)")
    staff = sub.add_parser("create-staff", help="create a staff account")
    staff.add_argument("username")
    staff.add_argument("--role", required=True, choices=[role.value for role in Role])
    staff.add_argument("--display-name", default="")
    staff.add_argument("--community-id", type=int)
    staff.add_argument("--district", default="")
    staff.add_argument("--department-id", type=int)
    show = sub.add_parser("settings", help="print resolved settings (environment over .env over defaults)")
    show.add_argument("names", nargs="+", help="setting names, e.g. host port data_dir")
    show.add_argument("--shell", action="store_true", help="as NAME='value' lines for a shell's eval")
    leaves = sub.add_parser("chain-leaves", help="export every leaf hash submitted to the chain, with its index "
                                                 "(JSON lines, for `python -m chain recover`)")
    leaves.add_argument("--output", help="write to this file instead of standard output")
    disable = sub.add_parser("disable-staff", help="disable a staff account; its sessions end")
    disable.add_argument("username")
    disable.add_argument("--reason", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command == "settings":
        for name in args.names:
            key = name.lower()
            if key == "extra" or not hasattr(settings, key) or key.startswith("_"):
                print(f"unknown setting {name!r}", file=sys.stderr)
                return 2
            if key in SECRET_SETTINGS:  # declared with repr=False in Settings
                print(f"{name} is a secret and is not printed", file=sys.stderr)
                return 2
            value = str(getattr(settings, key))
            print(f"{key.upper()}={shlex.quote(value)}" if args.shell else value)
        return 0

    if args.command == "migrate":
        async def _migrate() -> None:
            await db.migrate(settings)
            await db.close()

        asyncio.run(_migrate())
        print("migrations applied")
        return 0
    if args.command == "seed-demo":
        from backend.server import seed

        seed(settings)
        return 0
    if args.command == "create-staff":
        from backend.auth.passwords import validate_new_password
        from backend.auth.service import create_staff

        password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        problem = validate_new_password(password)
        if problem:
            print(problem, file=sys.stderr)
            return 2
        try:
            user = asyncio.run(_with_db(settings, lambda: create_staff(
                username=args.username, password=password, display_name=args.display_name or args.username,
                role=Role(args.role), community_id=args.community_id, district=args.district,
                department_id=args.department_id,
            )))
        except ApiError as refused:  # e.g. a community role without its community
            print(f"{refused.message} ({refused.code})", file=sys.stderr)
            return 2
        print(f"created staff user {user.username} (id {user.id})")
        return 0
    if args.command == "chain-leaves":
        import json

        from backend.credentials.anchor import submitted_leaves

        log_vkey = None
        if settings.chain_trust_file:
            from chain.verify import Trust

            log_vkey = Trust.load(settings.chain_trust_file).log_vkey  # leaves proven on another log are left out

        async def _export() -> int:
            out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
            count = 0
            try:
                async for record in submitted_leaves(settings.chain_submitter, log_vkey=log_vkey):
                    out.write(json.dumps(record) + "\n")
                    count += 1
            finally:
                if args.output:
                    out.close()
            return count

        count = asyncio.run(_with_db(settings, _export))
        print(f"{count} leaves exported", file=sys.stderr)
        return 0
    if args.command == "disable-staff":
        from backend.auth.service import disable_staff_by_username
        from backend.cache import create_cache

        async def _disable() -> object:
            cache = create_cache(settings.redis_url, settings.cache_prefix)
            try:
                return await disable_staff_by_username(username=args.username, reason=args.reason,
                                                       settings=settings, cache=cache)
            finally:
                await cache.close()

        try:
            asyncio.run(_with_db(settings, _disable))
        except ApiError as refused:
            print(f"{refused.message} ({refused.code})", file=sys.stderr)
            return 2
        print(f"disabled staff user {args.username}; their sessions are revoked")
        return 0
    if args.command == "serve":
        from backend.server import serve as run_server

        return run_server(settings, host=args.host, port=args.port, workers=args.workers, with_demo=args.seed_demo)
    return 2


if __name__ == "__main__":
    sys.exit(main())
