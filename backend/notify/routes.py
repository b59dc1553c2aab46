"""HTTP of the app user's inbox (消息通知): their own messages, newest first, and marking them read."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, json
from sanic.response import HTTPResponse

from backend.auth.guards import authenticated
from backend.errors import ValidationFailed
from backend.http import Schema, validated_body, validated_query
from backend.notify import inbox

bp = Blueprint("notify")

_NO_STORE = {"Cache-Control": "no-store"}


class InboxQuery(Schema):
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=20, ge=1, le=100)


class MarkRead(Schema):
    """Either the ids shown to the user, or all=true."""

    ids: list[int] | None = Field(default=None, max_length=200)
    all: bool = False


@bp.get("/api/app/notifications")
@authenticated(kinds=("app",))
@validated_query(InboxQuery)
async def list_notifications(request: Request, query: InboxQuery) -> HTTPResponse:
    """The signed-in app user's messages (reminders and notices), newest first, with the unread count."""
    user = await inbox.app_user_or_raise(request.ctx.principal.user_id)
    total, unread, rows = await inbox.list_messages(user=user, cipher=request.app.ctx.cipher,
                                                    page=query.page, size=query.size)
    return json({"items": [inbox.message_view(r) for r in rows], "total": total, "unread": unread,
                 "page": query.page, "size": query.size}, headers=_NO_STORE)


@bp.post("/api/app/notifications/read")
@authenticated(kinds=("app",))
@validated_body(MarkRead)
async def mark_notifications_read(request: Request, body: MarkRead) -> HTTPResponse:
    """Mark some (or all) of the user's messages read; other people's ids are ignored."""
    if not body.all and not body.ids:
        raise ValidationFailed("请给出要标为已读的消息（ids），或 all=true", field="ids")
    user = await inbox.app_user_or_raise(request.ctx.principal.user_id)
    marked, unread = await inbox.mark_read(user=user, cipher=request.app.ctx.cipher,
                                           ids=None if body.all else body.ids)
    return json({"marked": marked, "unread": unread}, headers=_NO_STORE)
