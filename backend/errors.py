"""One error type for the whole API, rendered as `{"error": {"code", "message"}}`.

Services raise `ApiError` (or a subclass) with a stable machine `code` and a message that
can be shown to the person who caused it (Chinese where it reaches residents). The handlers
registered by `register_error_handlers` also turn Sanic's own failures (unknown route, wrong
method, oversized or malformed body) into the same shape, so clients parse one format.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Sanic, json
from sanic.exceptions import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestCancelled,
    SanicException,
)
from sanic.request import Request
from sanic.response import HTTPResponse

log = logging.getLogger("zhilian.errors")


class ApiError(Exception):
    """An error the client should see, with its HTTP status."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.field = field
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ValidationFailed(ApiError):
    status = 422
    code = "validation_failed"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str = "操作过于频繁，请稍后再试", *, retry_after: int = 60, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    """A dependency this request needs (the cache, say) is not answering: try again shortly.

    A 503 with `Retry-After` tells clients and proxies the failure is temporary and not theirs,
    where a 500 would read as a bug.
    """

    status = 503
    code = "service_unavailable"

    def __init__(self, message: str = "服务暂时不可用，请稍后再试", *, retry_after: int = 5, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


def error_response(status: int, code: str, message: str, **extra: Any) -> HTTPResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    error.update({k: v for k, v in extra.items() if v is not None})
    return json({"error": error}, status=status)


def register_error_handlers(app: Sanic) -> None:
    """Map every failure to the one error shape."""

    @app.exception(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> HTTPResponse:
        response = json(exc.body(), status=exc.status)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(retry_after)))
        return response

    @app.exception(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> HTTPResponse:
        return error_response(404, "not_found", "请求的地址不存在")

    @app.exception(MethodNotAllowed)
    async def _method(request: Request, exc: MethodNotAllowed) -> HTTPResponse:
        response = error_response(405, "method_not_allowed", f"此地址不支持 {request.method} 请求")
        allowed = getattr(exc, "allowed_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.exception(PayloadTooLarge)
    async def _too_large(request: Request, exc: PayloadTooLarge) -> HTTPResponse:
        return error_response(413, "payload_too_large", "上传的内容太大")

    @app.exception(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> HTTPResponse:
        text = str(exc)
        if "JSON" in text or "json" in text:
            return error_response(400, "malformed_json", "请求内容不是有效的 JSON")
        return error_response(400, "bad_request", "请求无效")

    @app.exception(SanicException)
    async def _sanic(request: Request, exc: SanicException) -> HTTPResponse:
        status = getattr(exc, "status_code", 500) or 500
        if status >= 500:
            log.exception("server error", exc_info=exc)
            return error_response(status, "server_error", "服务器出错，请稍后再试")
        return error_response(status, "http_error", str(exc) or "请求无效")

    @app.exception(RequestCancelled)
    async def _client_left(request: Request, exc: RequestCancelled) -> HTTPResponse:
        # the caller closed the connection before the answer: nobody reads this, and it is not a
        # server failure (Sanic's default counted it as a 500); 499 as in nginx's logs
        return error_response(499, "client_closed_request", "客户端已断开连接")

    @app.exception(Exception)
    async def _unexpected(request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "server_error", "服务器出错，请稍后再试")
