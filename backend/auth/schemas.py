"""Request bodies of the auth routes."""

from __future__ import annotations

from pydantic import Field

from backend.http import Schema


class StaffLogin(Schema):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)
    totp_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=10, max_length=200)


class LogoutRequest(Schema):
    refresh_token: str | None = Field(default=None, max_length=200)


class TotpConfirm(Schema):
    code: str = Field(pattern=r"^\d{6}$")


class Reauthenticate(Schema):
    """The current password and TOTP code, required to change or remove the second factor."""

    password: str = Field(min_length=1, max_length=200)
    totp_code: str = Field(pattern=r"^\d{6}$")


class AdminTotpReset(Schema):
    """An admin removes a colleague's authenticator: the admin's own password (and code, if on) and why."""

    password: str = Field(min_length=1, max_length=200)
    totp_code: str | None = Field(default=None, pattern=r"^\d{6}$")
    reason: str = Field(min_length=2, max_length=200)


class AccountActive(Schema):
    active: bool
    reason: str = Field(min_length=2, max_length=200)


class OtpRequest(Schema):
    phone: str = Field(min_length=11, max_length=20)


class OtpLogin(Schema):
    phone: str = Field(min_length=11, max_length=20)
    code: str = Field(pattern=r"^\d{6}$")
