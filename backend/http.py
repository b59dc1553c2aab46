"""Small HTTP helpers shared by every `routes.py`: validated bodies and query strings, paging.

`validated_body(Model)` both validates the JSON body against a pydantic model (errors name
the field) and declares that model as the request body in the OpenAPI description, so the
schema a client reads is the schema the server enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from sanic import Request
from sanic_ext import openapi

from backend.errors import ApiError, ValidationFailed

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

_MESSAGES_ZH = {
    "missing": "必填",
    "string_too_short": "太短",
    "string_too_long": "太长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "greater_than_equal": "数值太小",
    "less_than_equal": "数值太大",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "extra_forbidden": "不允许的字段",
    "date_from_datetime_parsing": "日期格式不正确",
    "date_parsing": "日期格式不正确",
    "bool_parsing": "应为是/否",
    "string_type": "应为文本",
}


class Schema(BaseModel):
    """Base for request schemas: unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def parse_model(model: type[M], data: Any, *, where: str = "body") -> M:
    """Validate `data` into `model`, turning the first problem into a ValidationFailed naming the field."""
    if where == "body" and not isinstance(data, dict):
        raise ValidationFailed("请求内容应为 JSON 对象", code="validation_failed", field="body")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or where
        reason = _MESSAGES_ZH.get(first.get("type", ""), first.get("msg", "无效"))
        details = {
            "fields": [
                {
                    "field": ".".join(str(p) for p in e.get("loc", ())),
                    "type": e.get("type"),
                    "message": _MESSAGES_ZH.get(e.get("type", ""), e.get("msg", "无效")),
                }
                for e in errors
            ]
        }
        raise ValidationFailed(f"字段 {field}：{reason}", field=field, details=details) from None


def json_body(request: Request) -> Any:
    """The parsed JSON body; malformed JSON is a 400 with the shared error shape."""
    if not request.body:
        raise ApiError("请求内容为空", code="empty_body", status=400)
    try:
        return request.json
    except Exception:  # Sanic raises BadRequest subclasses with varying text
        raise ApiError("请求内容不是有效的 JSON", code="malformed_json", status=400) from None


def validated_body(model: type[BaseModel]) -> Callable[[F], F]:
    """Validate the JSON body into `model` and pass it to the handler as `body`."""

    def decorator(handler: F) -> F:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            kwargs["body"] = parse_model(model, json_body(request))
            return await handler(request, *args, **kwargs)

        return openapi.body({"application/json": model}, required=True)(wrapper)  # type: ignore[return-value]

    return decorator


def validated_query(model: type[BaseModel]) -> Callable[[F], F]:
    """Validate the query string into `model` (single values) and pass it as `query`."""

    def decorator(handler: F) -> F:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            raw = {key: values[-1] for key, values in request.args.items()}
            kwargs["query"] = parse_model(model, raw, where="query")
            return await handler(request, *args, **kwargs)

        for name, field in model.model_fields.items():
            wrapper = openapi.parameter(name, str, location="query", required=field.is_required())(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorator


def client_ip(request: Request) -> str:
    """The caller's address: the proxy's X-Forwarded-For is trusted only via Sanic's FORWARDED config."""
    return request.remote_addr or request.ip or "unknown"
