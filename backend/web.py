"""The built resident app (miniapp/dist) served at /m/: files as they are, index.html for the rest.

The app uses a hash router, so every other path under /m/ is the app's entry page. Hashed
assets are cached for a year; index.html never is (a new build shows up at the next open).
When the app is not built, /m/ answers a clear 503 instead of an empty page.
"""

from __future__ import annotations

import os
from pathlib import Path

from sanic import Request, Sanic, json, redirect
from sanic.response import file

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIST = REPO_ROOT / "miniapp" / "dist"


def _cached(response, policy: str):
    response.headers["Cache-Control"] = policy
    return response


def register_miniapp(app: Sanic, dist: Path | str | None = None) -> None:
    """Routes /m and /m/<path> to the files of `dist` (default miniapp/dist, or MINIAPP_DIST)."""
    root = Path(dist or os.environ.get("MINIAPP_DIST") or DEFAULT_DIST).resolve()

    def not_built():
        return json({"error": {"code": "miniapp.not_built",
                               "message": "手机端页面还没有构建：请运行 scripts/dev（或 npm ci && npm run build --workspace miniapp）"}},
                    status=503)

    async def index():
        entry = root / "index.html"
        if not entry.is_file():
            return not_built()
        return _cached(await file(entry, mime_type="text/html; charset=utf-8"), "no-cache")

    @app.get("/m", name="miniapp_bare", strict_slashes=True)
    async def miniapp_bare(request: Request):
        return redirect("/m/")

    @app.get("/m/", name="miniapp_index", strict_slashes=True)
    async def miniapp_index(request: Request):
        return await index()

    @app.get("/m/<path:path>", name="miniapp_file")
    async def miniapp_file(request: Request, path: str):
        target = (root / path).resolve()
        if target.is_file() and target.is_relative_to(root):
            immutable = target.parent.name == "assets"
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return _cached(await file(target), cache)
        if path.startswith("assets/"):
            return json({"error": {"code": "not_found", "message": "没有这个文件"}}, status=404)
        return await index()
