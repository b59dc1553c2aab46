"""backend/web.py: the built app at /m/, index.html for the app's own paths, a clear 503 when not built."""

from __future__ import annotations

from sanic import Sanic

from backend.web import register_console, register_miniapp


def serve(dist, name: str):
    Sanic.test_mode = True
    app = Sanic(name)
    register_miniapp(app, dist)
    return app


def test_not_built_is_a_clear_503(tmp_path):
    app = serve(tmp_path / "missing", "miniapp_missing")
    _, response = app.test_client.get("/m/")
    assert response.status == 503
    assert response.json["error"]["code"] == "miniapp.not_built"


def test_files_fallback_and_no_escape(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")
    app = serve(dist, "miniapp_built")
    _, bare = app.test_client.get("/m", allow_redirects=False)
    assert bare.status in (301, 302) and bare.headers["location"] == "/m/"
    _, index = app.test_client.get("/m/")
    assert index.status == 200 and "<title>app</title>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    _, asset = app.test_client.get("/m/assets/index-abc.js")
    assert asset.status == 200 and "immutable" in asset.headers["cache-control"]
    _, deep = app.test_client.get("/m/some/app/path")
    assert deep.status == 200 and "<title>app</title>" in deep.text
    _, missing_asset = app.test_client.get("/m/assets/gone.js")
    assert missing_asset.status == 404
    _, escape = app.test_client.get("/m/..%2fsecret.txt")
    assert escape.text != "no"


def test_console_is_served_beside_the_app(tmp_path):
    """The staff console has its own prefix and build; a missing build names the console, not the app."""
    Sanic.test_mode = True
    app = Sanic("console_and_app")
    console_dist = tmp_path / "console"
    console_dist.mkdir()
    (console_dist / "index.html").write_text("<!doctype html><title>console</title>")
    register_miniapp(app, tmp_path / "missing")
    register_console(app, console_dist)
    _, console = app.test_client.get("/console/month")
    assert console.status == 200 and "<title>console</title>" in console.text
    _, bare = app.test_client.get("/console", allow_redirects=False)
    assert bare.headers["location"] == "/console/"
    _, phone = app.test_client.get("/m/")
    assert phone.status == 503 and phone.json["error"]["code"] == "miniapp.not_built"
