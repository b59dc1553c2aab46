"""Accounts: staff (password + optional TOTP) and app users (phone + one-time code)."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    COMMUNITY_STAFF = "community_staff"
    COMMUNITY_ADMIN = "community_admin"
    DISTRICT_ADMIN = "district_admin"
    DEPARTMENT_OFFICER = "department_officer"
    AUDITOR = "auditor"
    PLATFORM_ADMIN = "platform_admin"


class StaffUser(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=64)
    password_hash = fields.CharField(max_length=255)
    role = fields.CharEnumField(Role, max_length=32)
    community = fields.ForeignKeyField("zhilian.Community", related_name="staff", null=True, on_delete=fields.RESTRICT)
    district = fields.CharField(max_length=64, default="", description="for district admins")
    department = fields.ForeignKeyField(
        "zhilian.Department", related_name="officers", null=True, on_delete=fields.RESTRICT
    )
    totp_secret_cipher = fields.CharField(max_length=255, null=True)
    totp_pending_cipher = fields.CharField(
        max_length=255, null=True, description="a replacement secret, in force once confirmed with a code from it"
    )
    totp_enabled = fields.BooleanField(default=False)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_user"


class AppUser(Model):
    """A resident or helper who signs in to the phone app with their phone number."""

    id = fields.IntField(primary_key=True)
    phone_cipher = fields.CharField(max_length=255)
    phone_index = fields.CharField(max_length=64, unique=True)
    resident = fields.ForeignKeyField(
        "zhilian.Resident", related_name="app_users", null=True, on_delete=fields.SET_NULL
    )
    wechat_openid = fields.CharField(max_length=64, null=True, description="set when signed in through WeChat")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_login_at = fields.DatetimeField(null=True)
    is_active = fields.BooleanField(default=True)

    class Meta:
        table = "app_user"


class RefreshToken(Model):
    """A rotating refresh token: only its hash is stored. Reuse of a spent one revokes its family."""

    id = fields.UUIDField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    subject_kind = fields.CharField(max_length=8, description="staff | app")
    subject_id = fields.IntField()
    family_id = fields.UUIDField(db_index=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "refresh_token"
