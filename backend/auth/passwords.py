"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106's guidance)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verified when the username is unknown so both paths cost the same (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("zhilian-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def validate_new_password(password: str) -> str | None:
    """A reason the password is too weak, or None."""
    if len(password) < 10:
        return "密码至少 10 位"
    if password.isdigit() or password.isalpha():
        return "密码需同时包含字母和数字"
    return None
