"""A minimal Sanic app returning `{"ok": true}`: the baseline for `scripts/bench/api.py`.

Run as its own process (single worker, loopback only): `python scripts/bench/_bare_app.py PORT`.
No middleware, no database, no sanic-ext: just the framework's request/response path.
"""

from __future__ import annotations

import sys

from sanic import Request, Sanic, json


def build_app() -> Sanic:
    app = Sanic("zhilian_bench_bare", configure_logging=False)
    app.config.AUTO_EXTEND = False  # no sanic-ext (OpenAPI, validation hooks): the bare framework
    app.config.ACCESS_LOG = False

    @app.get("/")
    async def ok(request: Request):
        return json({"ok": True})

    return app


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: _bare_app.py PORT", file=sys.stderr)
        return 2
    build_app().run(host="127.0.0.1", port=int(argv[0]), single_process=True, access_log=False, motd=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
