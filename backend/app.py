"""`create_app(settings)`: the one place that wires the backend together.

Nothing happens at import time; tests and workers build as many apps as they need.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import ujson
from sanic import Request, Sanic
from sanic.response import HTTPResponse

from backend import db, worker
from backend.audit import service as audit_service
from backend.cache import create_cache
from backend.certification.faces import FaceRuntime, face_config_from_env
from backend.errors import error_response, register_error_handlers
from backend.notify.service import create_sender, create_wechat_sender
from backend.ops import readiness
from backend.ops.logging import configure_logging, request_id_var
from backend.ops.metrics import Metrics
from backend.security.fieldcrypt import FieldCipher, parse_key
from backend.settings import Settings

log = logging.getLogger("zhilian.http")


def _dumps(value: object, **kwargs: object) -> str:
    """JSON with Chinese left readable (UTF-8) rather than \\u-escaped."""
    kwargs.setdefault("ensure_ascii", False)
    return ujson.dumps(value, **kwargs)


def build_cipher(settings: Settings) -> FieldCipher:
    """The field cipher: the active key plus any retired keys still needed to decrypt old rows."""
    keys = {settings.field_encryption_key_id: parse_key(settings.field_encryption_key)}
    for item in filter(None, (part.strip() for part in settings.field_encryption_old_keys.split(","))):
        key_id, _, b64 = item.partition(":")
        keys[key_id.strip()] = parse_key(b64.strip())
    return FieldCipher(keys, settings.field_encryption_key_id, parse_key(settings.blind_index_key))


def create_app(settings: Settings, *, name: str = "zhilian") -> Sanic:
    configure_logging(settings.log_level, as_json=settings.log_json)
    app = Sanic(name, configure_logging=False, dumps=_dumps)
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.OAS_URL_PREFIX = "/docs"
    app.config.OAS_UI_DEFAULT = "swagger"
    app.config.OAS_AUTODOC = True
    app.config.API_TITLE = "Zhilian (智链) API"
    app.config.API_VERSION = "0.1.0"
    app.config.API_DESCRIPTION = "Monthly proof-of-life certification for elderly subsidy recipients."
    app.config.CORS = False
    # Same-origin clients and no CORS: automatic OPTIONS routes answered nothing anyone asks, and adding
    # one per route re-finalised the router each time (7 s of every start with the port open but deaf).
    app.config.HTTP_AUTO_OPTIONS = False
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")

    app.ctx.settings = settings
    app.ctx.cipher = build_cipher(settings)
    app.ctx.metrics = Metrics()
    app.ctx.clock = lambda: datetime.now(UTC)  # the one clock deadlines are computed with (tests freeze it)
    app.ctx.readiness = readiness.Readiness()
    app.ctx.stop_worker = None
    app.ctx.outbox_handlers = {}
    app.ctx.outbox_dependencies = {}
    from backend.credentials import anchor as credential_anchor

    credential_anchor.install(app, settings)  # issue on certification.passed, anchor when CHAIN_URL is set
    _install_workorder_handlers(app)
    app.ctx.face = FaceRuntime(face_config_from_env(settings.model_dir), threads=settings.face_threads)

    register_error_handlers(app)
    _register_middleware(app)
    _register_blueprints(app)
    _register_listeners(app, settings)
    return app


def _install_workorder_handlers(app: Sanic) -> None:
    """Effects flowing up to the work orders arrive as outbox events with plain data."""
    from backend.workorders import outreach

    async def unreached(event):
        await outreach.on_unreached(event, now=app.ctx.clock())

    app.ctx.outbox_handlers[outreach.UNREACHED_EVENT] = unreached


def _register_blueprints(app: Sanic) -> None:
    from backend.audit.routes import bp as audit_bp
    from backend.auth.routes import bp as auth_bp
    from backend.certification.evidence_routes import bp as evidence_bp
    from backend.certification.routes import bp as certification_bp
    from backend.credentials.routes import bp as credentials_bp
    from backend.exports.routes import bp as exports_bp
    from backend.notify.routes import bp as notify_bp
    from backend.oauth.routes import bp as oauth_bp
    from backend.ops.routes import bp as ops_bp
    from backend.qr.routes import bp as qr_bp
    from backend.residents.binding_routes import bp as bindings_bp
    from backend.residents.routes import bp as residents_bp
    from backend.web import register_console, register_miniapp
    from backend.workorders.open311_routes import bp as open311_bp
    from backend.workorders.routes import bp as workorders_bp

    for bp in (ops_bp, auth_bp, residents_bp, audit_bp, certification_bp, evidence_bp, qr_bp, bindings_bp, oauth_bp,
               credentials_bp, exports_bp, notify_bp, workorders_bp, open311_bp):
        app.blueprint(bp)
    register_miniapp(app)  # the resident app's built files at /m/
    register_console(app)  # the staff console's built files at /console/

    @app.get("/openapi.json")
    async def openapi_json(request: Request) -> HTTPResponse:
        """The OpenAPI 3 description (the same document sanic-ext serves under /docs)."""
        from sanic import json as json_response
        from sanic_ext.extensions.openapi.builders import SpecificationBuilder

        return json_response(SpecificationBuilder().build(request.app).serialize())


def _register_middleware(app: Sanic) -> None:
    @app.on_request
    async def _start(request: Request) -> None:
        incoming = request.headers.get("x-request-id", "")
        request.ctx.request_id = incoming[:64] if incoming.isascii() and incoming else uuid.uuid4().hex
        request.ctx.started = time.perf_counter()
        request_id_var.set(request.ctx.request_id)
        if app.ctx.readiness.blocks(request.path):
            response = error_response(503, "starting", "服务正在启动，请稍后再试")
            response.headers["Retry-After"] = str(readiness.RETRY_AFTER_S)
            return response

    @app.on_response
    async def _finish(request: Request, response: HTTPResponse) -> None:
        started = getattr(request.ctx, "started", None)
        if started is None:
            return
        seconds = time.perf_counter() - started
        route = request.route.path if request.route else "unmatched"
        app.ctx.metrics.observe(route=route, method=request.method, status=response.status, seconds=seconds)
        response.headers["X-Request-ID"] = request.ctx.request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.status == 503:  # a dependency or start-up: said so to the caller, not a crash
            log.warning("unavailable", extra={"route": route, "status": 503, "ms": round(seconds * 1000, 2)})
        elif response.status >= 500:
            log.error("request failed", extra={"route": route, "status": response.status, "ms": round(seconds * 1000, 2)})
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"route": route, "status": response.status, "ms": round(seconds * 1000, 2)})


def _register_listeners(app: Sanic, settings: Settings) -> None:
    @app.before_server_start
    async def _open(app: Sanic) -> None:
        app.ctx.cache = create_cache(settings.redis_url, settings.cache_prefix)
        app.ctx.sender = create_sender(settings.sms_sender, app.ctx.cipher, url=settings.sms_gateway_url,
                                       api_key=settings.sms_gateway_key, sign=settings.sms_sign)
        app.ctx.wechat = create_wechat_sender(
            app_id=settings.wechat_app_id, app_secret=settings.wechat_app_secret,
            template_ids=settings.wechat_template_ids, api_base=settings.wechat_api_base, cipher=app.ctx.cipher,
        )

    async def connect() -> None:
        await db.init(settings, run_migrations=settings.auto_migrate)
        await audit_service.ensure_head()
        app.ctx.stop_worker = worker.start(app) if settings.background_worker else None

    @app.after_server_start
    async def _connect(app: Sanic) -> None:
        # after the listener opened: callers get 503 "starting" (not a hang) while this runs or waits
        await readiness.bring_up(app.ctx.readiness, connect)

    @app.after_server_stop
    async def _close(app: Sanic) -> None:
        await readiness.stop(app.ctx.readiness)
        if app.ctx.stop_worker is not None:
            await app.ctx.stop_worker()
        await app.ctx.cache.close()
        app.ctx.face.close()
        await db.close()
