"""The built front ends served as files: the resident app at /m/, the staff console at /console/.

Both use a hash router, so every other path under their prefix is the app's entry page. Hashed
assets are cached for a year; index.html never is (a new build shows up at the next open).
When an app is not built, its prefix answers a clear 503 instead of an empty page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sanic import Request, Sanic, json, redirect
from sanic.response import file

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class FrontEnd:
    """One built single-page app: where it is mounted, where its files are, how to build it."""

    name: str
    prefix: str
    dist_env: str
    label: str

    @property
    def default_dist(self) -> Path:
        return REPO_ROOT / self.name / "dist"


MINIAPP = FrontEnd(name="miniapp", prefix="/m", dist_env="MINIAPP_DIST", label="手机端页面")
CONSOLE = FrontEnd(name="console", prefix="/console", dist_env="CONSOLE_DIST", label="社区工作台页面")


def _cached(response, policy: str):
    response.headers["Cache-Control"] = policy
    return response


def register_frontend(app: Sanic, front: FrontEnd, dist: Path | str | None = None) -> None:
    """Routes `prefix` and `prefix/<path>` to the files of `dist` (default `<name>/dist`, or its env variable)."""
    root = Path(dist or os.environ.get(front.dist_env) or front.default_dist).resolve()
    prefix = front.prefix

    def not_built():
        hint = f"请运行 scripts/dev（或 npm ci && npm run build --workspace {front.name}）"
        return json({"error": {"code": f"{front.name}.not_built", "message": f"{front.label}还没有构建：{hint}"}},
                    status=503)

    async def index():
        entry = root / "index.html"
        if not entry.is_file():
            return not_built()
        return _cached(await file(entry, mime_type="text/html; charset=utf-8"), "no-cache")

    async def bare(request: Request):
        return redirect(f"{prefix}/")

    async def entry_page(request: Request):
        return await index()

    async def asset(request: Request, path: str):
        target = (root / path).resolve()
        if target.is_file() and target.is_relative_to(root):
            immutable = target.parent.name == "assets"
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return _cached(await file(target), cache)
        if path.startswith("assets/"):
            return json({"error": {"code": "not_found", "message": "没有这个文件"}}, status=404)
        return await index()

    app.add_route(bare, prefix, methods=["GET"], name=f"{front.name}_bare", strict_slashes=True)
    app.add_route(entry_page, f"{prefix}/", methods=["GET"], name=f"{front.name}_index", strict_slashes=True)
    app.add_route(asset, f"{prefix}/<path:path>", methods=["GET"], name=f"{front.name}_file")


def register_miniapp(app: Sanic, dist: Path | str | None = None) -> None:
    register_frontend(app, MINIAPP, dist)


def register_console(app: Sanic, dist: Path | str | None = None) -> None:
    register_frontend(app, CONSOLE, dist)
