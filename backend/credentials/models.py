"""Tables of the credentials domain: issuer keys (public halves) and issued credentials.

`Anchored` is the part shared with exports: the leaf hash put on the chain and, once a
checkpoint cosigned by a witness quorum covers it, the inclusion proof with that checkpoint.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class IssuerKey(Model):
    """The public half of a community's Ed25519 issuing key, kept after rotation."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="issuer_keys", on_delete=fields.CASCADE)
    kid = fields.CharField(max_length=64)
    public_multibase = fields.CharField(max_length=64, description="Multikey publicKeyMultibase (z6Mk...)")
    created_at = fields.DatetimeField(auto_now_add=True)
    withdrawn_at = fields.DatetimeField(null=True, description="set after a compromise: dropped from the DID document")

    class Meta:
        table = "issuer_key"
        unique_together = (("community", "kid"),)


class Anchored(Model):
    """A hash on the chain and, when final, its inclusion proof and checkpoint."""

    leaf_hash = fields.CharField(max_length=64, unique=True, description="hex SHA-256 put on the chain")
    anchor_index = fields.BigIntField(null=True, description="leaf index in the log")
    anchor_tree_size = fields.BigIntField(null=True)
    inclusion = fields.JSONField(null=True, description="inclusion proof bundle with the final checkpoint")
    anchored_at = fields.DatetimeField(null=True)

    class Meta:
        abstract = True


class Credential(Anchored):
    """The signed VC 2.0 document of one certification, with its status-list position."""

    id = fields.UUIDField(primary_key=True)
    certification = fields.OneToOneField(
        "zhilian.Certification", related_name="credential", on_delete=fields.CASCADE
    )
    community = fields.ForeignKeyField("zhilian.Community", related_name="credentials", on_delete=fields.RESTRICT)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="credentials", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="credentials", on_delete=fields.CASCADE)
    document = fields.JSONField(description="the credential with its eddsa-jcs-2022 proof")
    status_list = fields.IntField(description="number of the community's status list pair")
    status_index = fields.IntField(description="random position in both lists")
    revoked = fields.BooleanField(default=False)
    suspended = fields.BooleanField(default=False)
    status_reason = fields.CharField(max_length=200, default="")
    issued_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "credential"
        unique_together = (("community", "status_list", "status_index"),)
