"""Tables of the OAuth provider: clients, grants (token families), codes, tokens, consents.

Secrets, codes and refresh tokens are stored only as SHA-256 hashes. Every token belongs to
one `OAuthGrant`, the family of everything issued from one authorization: revoking the grant
(reused code, reused refresh token, withdrawn consent) kills every token of the family at once,
including tokens a concurrent request saves afterwards, because validity is checked on the
grant as well as on the token.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OAuthClient(Model):
    """A portal registered by a platform admin."""

    id = fields.IntField(primary_key=True)
    client_id = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=64)
    secret_hash = fields.CharField(max_length=64, null=True, description="sha256 hex, null for public clients")
    is_confidential = fields.BooleanField()
    redirect_uris = fields.JSONField(description="exact-match list")
    scopes = fields.JSONField(description="scopes the client may ask for")
    sector_identifier = fields.CharField(max_length=255, description="pairwise subject sector (host)")
    id_token_signed_response_alg = fields.CharField(
        max_length=8, default="", description="OIDC Registration §2: ID token algorithm ('' = the provider's default)"
    )
    is_active = fields.BooleanField(default=True)
    created_by = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_client"


class OAuthGrant(Model):
    """One authorization of a client by an app user: the family of its code and tokens."""

    id = fields.UUIDField(primary_key=True)
    client = fields.ForeignKeyField("zhilian.OAuthClient", related_name="grants", on_delete=fields.CASCADE)
    app_user = fields.ForeignKeyField("zhilian.AppUser", related_name="oauth_grants", on_delete=fields.CASCADE)
    scope = fields.CharField(max_length=255)
    auth_time = fields.BigIntField(description="when the user signed in (unix seconds)")
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_reason = fields.CharField(max_length=32, default="")

    class Meta:
        table = "oauth_grant"


class OAuthAuthorizationCode(Model):
    """A single-use, short-lived authorization code (its hash), bound to client, redirect and PKCE."""

    id = fields.IntField(primary_key=True)
    code_hash = fields.CharField(max_length=64, unique=True)
    grant = fields.ForeignKeyField("zhilian.OAuthGrant", related_name="codes", on_delete=fields.CASCADE)
    client = fields.ForeignKeyField("zhilian.OAuthClient", related_name="codes", on_delete=fields.CASCADE)
    redirect_uri = fields.CharField(max_length=500)
    scope = fields.CharField(max_length=255)
    nonce = fields.CharField(max_length=255, null=True)
    code_challenge = fields.CharField(max_length=128)
    code_challenge_method = fields.CharField(max_length=8)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_code"


class OAuthToken(Model):
    """An access token (by its `jti`) and the refresh token issued with it (by its hash)."""

    id = fields.UUIDField(primary_key=True)
    grant = fields.ForeignKeyField("zhilian.OAuthGrant", related_name="tokens", on_delete=fields.CASCADE)
    client = fields.ForeignKeyField("zhilian.OAuthClient", related_name="tokens", on_delete=fields.CASCADE)
    access_jti = fields.CharField(max_length=64, unique=True)
    access_expires_at = fields.DatetimeField()
    refresh_hash = fields.CharField(max_length=64, unique=True, null=True)
    refresh_expires_at = fields.DatetimeField(null=True)
    refresh_used_at = fields.DatetimeField(null=True, description="set when rotated, a second use is theft")
    scope = fields.CharField(max_length=255)
    revoked_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "oauth_token"


class OAuthConsent(Model):
    """What an app user has agreed to share with a client, asked again only for new scopes."""

    id = fields.IntField(primary_key=True)
    app_user = fields.ForeignKeyField("zhilian.AppUser", related_name="oauth_consents", on_delete=fields.CASCADE)
    client = fields.ForeignKeyField("zhilian.OAuthClient", related_name="consents", on_delete=fields.CASCADE)
    scope = fields.CharField(max_length=255, description="space-separated, sorted")
    granted_at = fields.DatetimeField()

    class Meta:
        table = "oauth_consent"
        unique_together = (("app_user", "client"),)
