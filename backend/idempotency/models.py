"""The remembered outcome of a create, per caller and key, until it expires."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class IdempotencyKey(Model):
    """One `Idempotency-Key` a caller sent: what the request was (its fingerprint) and what it answered.

    `status` is 0 while the request is still running (only seen on SQLite, where the key is
    claimed before the work; on PostgreSQL the key is written in the same transaction as the
    work, so it exists only with its answer). The answer body is encrypted at rest: creates
    answer with personal data.
    """

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=64, description="who sent it: staff:<id> | app:<id>")
    key = fields.CharField(max_length=128)
    fingerprint = fields.CharField(max_length=64, description="SHA-256 of method, path, query and body")
    owner = fields.CharField(max_length=32, default="", description="process running it while status is 0")
    status = fields.IntField(default=0)
    content_type = fields.CharField(max_length=128, default="")
    body_cipher = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "idempotency_key"
        unique_together = (("scope", "key"),)
