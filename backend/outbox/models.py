"""Events written in the same transaction as the change that caused them."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OutboxEvent(Model):
    """One unit of deferred work (anchor a credential, issue a credential, send a reminder …).

    `dedupe_key` makes enqueueing idempotent: the same work enqueued twice is stored once.
    `leased_until` is set while a worker runs the event, so no other worker runs it at the same
    time; it is cleared as soon as the attempt ends (and expires if that worker dies).
    """

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=48, db_index=True)
    dedupe_key = fields.CharField(max_length=128, unique=True)
    payload = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    next_attempt_at = fields.DatetimeField(db_index=True)
    leased_until = fields.DatetimeField(null=True, description="a worker is running it until then")
    attempts = fields.IntField(default=0)
    processed_at = fields.DatetimeField(null=True, db_index=True)
    last_error = fields.TextField(default="")

    class Meta:
        table = "outbox_event"
