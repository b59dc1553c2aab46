"""The export table: the three files, their hashes, the manifest and its anchor."""

from __future__ import annotations

from tortoise import fields

from backend.credentials.models import Anchored


class Export(Anchored):
    """One department's package for one period of one community."""

    id = fields.UUIDField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="exports", on_delete=fields.RESTRICT)
    period = fields.ForeignKeyField("zhilian.Period", related_name="exports", on_delete=fields.CASCADE)
    department = fields.ForeignKeyField("zhilian.Department", related_name="exports", on_delete=fields.RESTRICT)
    created_by = fields.IntField(description="staff user id")
    created_at = fields.DatetimeField(auto_now_add=True)
    xlsx = fields.BinaryField()
    bundle = fields.BinaryField()
    pdf = fields.BinaryField()
    manifest = fields.JSONField(description="file hashes and what the export covers, its JCS hash is the leaf")
    counts = fields.JSONField(default=dict)

    class Meta:
        table = "export"
