"""The hash-chained audit trail: each event carries the hash of the previous one."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from backend.credentials.models import Anchored


class AuditEvent(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16, description="staff | app | system")
    actor_id = fields.CharField(max_length=64)
    action = fields.CharField(max_length=64, db_index=True)
    target_kind = fields.CharField(max_length=32, default="")
    target_id = fields.CharField(max_length=64, default="", db_index=True)
    community_id = fields.IntField(null=True, db_index=True)
    ip = fields.CharField(max_length=64, default="")
    request_id = fields.CharField(max_length=64, default="")
    details = fields.JSONField(default=dict)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "audit_event"


class AuditHead(Model):
    """A single row locked while appending, so concurrent workers extend one chain."""

    id = fields.IntField(primary_key=True)
    last_event_id = fields.BigIntField(default=0)
    last_hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_head"


class AuditAnchor(Anchored):
    """The chain head at some moment, put on the chain: the whole trail up to it is then fixed.

    An insider who rewrote the trail and recomputed every hash would still disagree with an
    anchored head, which anyone can check against the witnessed log.
    """

    id = fields.IntField(primary_key=True)
    last_event_id = fields.BigIntField(unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "audit_anchor"
