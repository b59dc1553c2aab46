"""The message outbox: what the dev sender delivers, and a record of every message sent."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OutboundMessage(Model):
    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16, description="sms | wechat")
    recipient_cipher = fields.CharField(max_length=255)
    recipient_index = fields.CharField(max_length=64, db_index=True)
    template = fields.CharField(max_length=64)
    body = fields.TextField(description="rendered text (one-time codes only via the dev outbox)")
    status = fields.CharField(max_length=16, default="queued")
    created_at = fields.DatetimeField(auto_now_add=True)
    read_at = fields.DatetimeField(null=True, description="when the recipient opened it in the app")
    link = fields.CharField(max_length=64, null=True,
                            description="the app screen this message is about (a case), else the one of its template")

    class Meta:
        table = "outbound_message"
