"""Tables of the residents domain: communities, departments, residents, helpers, consent.

Personal identifiers are never stored in clear: the national ID and phone live as AES-GCM
ciphertext (`*_cipher`) next to a keyed hash (`*_index`) used for equality lookups.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class ResidentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    MOVED = "moved"
    DECEASED = "deceased"


class BindingStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


class Community(Model):
    """A 社区: staff and residents belong to exactly one."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    street = fields.CharField(max_length=64, default="")
    district = fields.CharField(max_length=64, default="")
    phone = fields.CharField(max_length=32, default="", description="service phone shown to residents")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "community"


class Department(Model):
    """A department that consumes certifications (民政, 人社, 卫健 …) and witnesses the chain."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)

    class Meta:
        table = "department"


class Resident(Model):
    """An elder drawing the old-age subsidy, as registered in one community.

    The same person (national ID) may be registered in two communities for a while: a community
    registering someone is never told whether another community has them (that would make every
    staff member an oracle for the whole city); a district-level admin resolves the move
    (`backend.residents.moves`) and the other registration becomes `moved`.
    """

    id = fields.IntField(primary_key=True)
    public_id = fields.UUIDField(unique=True, description="pseudonymous id used in credentials")
    community = fields.ForeignKeyField("zhilian.Community", related_name="residents", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=30, db_index=True)
    national_id_cipher = fields.CharField(max_length=255)
    national_id_index = fields.CharField(max_length=64, db_index=True,
                                         description="keyed hash, unique per community (a move is resolved by the district)")
    id_suffix_index = fields.CharField(max_length=64, db_index=True, description="keyed hash of the last 4")
    birth_date = fields.DateField()
    sex = fields.CharField(max_length=1)
    phone_cipher = fields.CharField(max_length=255, null=True)
    phone_index = fields.CharField(max_length=64, null=True, db_index=True)
    address = fields.CharField(max_length=200, default="")
    living_address = fields.CharField(max_length=200, default="")
    programme_tier = fields.CharField(max_length=8)
    status = fields.CharEnumField(ResidentStatus, default=ResidentStatus.ACTIVE, max_length=16)
    qr_version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "resident"
        unique_together = (("community", "national_id_index"),)


class ConsentRecord(Model):
    """Consent to process sensitive data (PIPL art. 29: separate consent for biometrics)."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="consents", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=32, description="biometric | data_processing")
    version = fields.CharField(max_length=16)
    granted_at = fields.DatetimeField()
    method = fields.CharField(max_length=32, description="paper | in_app | verbal_witnessed")
    witnessed_by = fields.ForeignKeyField(
        "zhilian.StaffUser", related_name="witnessed_consents", null=True, on_delete=fields.SET_NULL
    )
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "consent_record"


class HelperBinding(Model):
    """A helper (child, neighbour, grid worker) allowed to certify for an elder once approved."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="helper_bindings", on_delete=fields.CASCADE)
    helper = fields.ForeignKeyField("zhilian.AppUser", related_name="bindings", on_delete=fields.CASCADE)
    relation = fields.CharField(max_length=16)
    status = fields.CharEnumField(BindingStatus, default=BindingStatus.PENDING, max_length=16)
    approved_by = fields.CharField(max_length=32, null=True, description="resident | staff:<id>")
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "helper_binding"
        unique_together = (("resident", "helper"),)
