"""The app user's inbox: the messages we sent to their phone (or WeChat), readable in the app.

Nothing is stored twice: every message we send is already a row of `outbound_message`, keyed
by the keyed hash (blind index) of the recipient's phone number or WeChat openid, so the app
user's inbox is the rows carrying their own indexes. Login codes are left out (a code shown
again in the app is only a risk), and the sign 【智链】 is dropped since the app is 智链 itself.
In-app notices (certification results, helper bindings: backend/notify/notices.py) are rows of
the same table on channel "app", so they appear here beside the reminders.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet

from backend.auth.models import AppUser
from backend.errors import Unauthorized
from backend.notify.models import OutboundMessage
from backend.security.fieldcrypt import FieldCipher

WECHAT_PURPOSE = "wechat_openid"
HIDDEN_TEMPLATES = ("login_code",)
TITLES = {
    "reminder_due_soon": "认证提醒",
    "reminder_overdue": "逾期提醒",
    "cert_passed": "认证已通过",
    "cert_review_approved": "认证已通过",
    "cert_review": "等待人工审核",
    "cert_failed": "认证没有通过",
    "cert_review_rejected": "审核没有通过",
    "binding_request": "帮办申请",
    "binding_approved": "帮办申请已同意",
    "binding_approved_for_elder": "新的帮办人",
    "binding_rejected": "帮办申请未同意",
    "binding_ended": "帮办已解除",
    "binding_ended_for_elder": "帮办已解除",
    "binding_withdrawn_for_elder": "帮办申请已撤回",
    "wo_submitted": "随手拍已提交",
    "wo_accepted": "随手拍已受理",
    "wo_dispatched": "随手拍已派单",
    "wo_in_progress": "随手拍处理中",
    "wo_extended": "随手拍办理延期",
    "wo_resolved": "随手拍已办结，请评价",
    "wo_reopened": "随手拍重新办理",
    "wo_merged": "随手拍已合并",
    "wo_out_of_scope": "随手拍不属于受理范围",
    "wo_called_back": "感谢评价",
}
DEFAULT_TITLE = "通知"
LINKS = {  # where the app takes the reader to act on a message (a route of the phone app)
    "reminder_due_soon": "/",
    "reminder_overdue": "/",
    "cert_passed": "/history",
    "cert_review_approved": "/history",
    "cert_review": "/history",
    "cert_failed": "/",
    "cert_review_rejected": "/",
    "binding_request": "/",
    "binding_approved": "/helper",
    "binding_approved_for_elder": "/",
    "binding_rejected": "/helper",
    "binding_ended": "/helper",
    "binding_ended_for_elder": "/",
    "binding_withdrawn_for_elder": "/",
    **{template: "/reports" for template in ("wo_submitted", "wo_accepted", "wo_dispatched", "wo_in_progress",
                                             "wo_extended", "wo_resolved", "wo_reopened", "wo_merged",
                                             "wo_out_of_scope", "wo_called_back")},
}
_SIGN = re.compile(r"^【[^】]{1,12}】")


async def app_user_or_raise(user_id: int) -> AppUser:
    """The signed-in app user (a disabled account reads nothing)."""
    user = await AppUser.get_or_none(id=user_id, is_active=True)
    if user is None:
        raise Unauthorized("账号已停用，请联系社区", code="auth.account_disabled")
    return user


def recipient_indexes(user: AppUser, cipher: FieldCipher) -> list[str]:
    """Every index a message to this user was stored under: their phone, and their WeChat when linked."""
    indexes = [user.phone_index]
    if user.wechat_openid:
        indexes.append(cipher.blind_index(user.wechat_openid, purpose=WECHAT_PURPOSE))
    return indexes


def _inbox(user: AppUser, cipher: FieldCipher) -> QuerySet[OutboundMessage]:
    return OutboundMessage.filter(recipient_index__in=recipient_indexes(user, cipher)).exclude(
        template__in=HIDDEN_TEMPLATES
    )


async def list_messages(
    *, user: AppUser, cipher: FieldCipher, page: int = 1, size: int = 20,
) -> tuple[int, int, list[OutboundMessage]]:
    """(total, unread, this page of messages), newest first."""
    inbox = _inbox(user, cipher)
    total = await inbox.count()
    unread = await inbox.filter(read_at=None).count()
    rows = await inbox.order_by("-created_at", "-id").offset((page - 1) * size).limit(size)
    return total, unread, rows


async def mark_read(*, user: AppUser, cipher: FieldCipher, ids: list[int] | None) -> tuple[int, int]:
    """Mark the given messages (or all, when `ids` is None) read; returns (marked now, still unread).

    Ids that are not this user's are ignored: the filter is the inbox itself.
    """
    unread = _inbox(user, cipher).filter(read_at=None)
    target = unread if ids is None else unread.filter(id__in=ids)
    marked = await target.update(read_at=datetime.now(UTC))
    return marked, await _inbox(user, cipher).filter(read_at=None).count()


def plain_text(body: str) -> str:
    """The message as the app shows it: without the SMS sign in front."""
    return _SIGN.sub("", body.strip(), count=1)


def message_view(row: OutboundMessage) -> dict[str, Any]:
    return {
        "id": row.id,
        "template": row.template,
        "title": TITLES.get(row.template, DEFAULT_TITLE),
        "body": plain_text(row.body),
        "channel": row.channel,
        "link": row.link or LINKS.get(row.template),
        "sent_at": row.created_at.isoformat(),
        "read": row.read_at is not None,
    }
