from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0002_certification')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OAuthClient',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('client_id', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=64)),
                ('secret_hash', fields.CharField(null=True, description='sha256 hex, null for public clients', max_length=64)),
                ('is_confidential', fields.BooleanField()),
                ('redirect_uris', fields.JSONField(description='exact-match list', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('scopes', fields.JSONField(description='scopes the client may ask for', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('sector_identifier', fields.CharField(description='pairwise subject sector (host)', max_length=255)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_by', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_client', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A portal registered by a platform admin.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthConsent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('app_user', fields.ForeignKeyField('zhilian.AppUser', source_field='app_user_id', db_constraint=True, to_field='id', related_name='oauth_consents', on_delete=OnDelete.CASCADE)),
                ('client', fields.ForeignKeyField('zhilian.OAuthClient', source_field='client_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.CASCADE)),
                ('scope', fields.CharField(description='space-separated, sorted', max_length=255)),
                ('granted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'oauth_consent', 'app': 'zhilian', 'unique_together': (('app_user', 'client'),), 'pk_attr': 'id', 'table_description': 'What an app user has agreed to share with a client, asked again only for new scopes.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthGrant',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('client', fields.ForeignKeyField('zhilian.OAuthClient', source_field='client_id', db_constraint=True, to_field='id', related_name='grants', on_delete=OnDelete.CASCADE)),
                ('app_user', fields.ForeignKeyField('zhilian.AppUser', source_field='app_user_id', db_constraint=True, to_field='id', related_name='oauth_grants', on_delete=OnDelete.CASCADE)),
                ('scope', fields.CharField(max_length=255)),
                ('auth_time', fields.BigIntField(description='when the user signed in (unix seconds)')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_reason', fields.CharField(default='', max_length=32)),
            ],
            options={'table': 'oauth_grant', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'One authorization of a client by an app user: the family of its code and tokens.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthAuthorizationCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code_hash', fields.CharField(unique=True, max_length=64)),
                ('grant', fields.ForeignKeyField('zhilian.OAuthGrant', source_field='grant_id', db_constraint=True, to_field='id', related_name='codes', on_delete=OnDelete.CASCADE)),
                ('client', fields.ForeignKeyField('zhilian.OAuthClient', source_field='client_id', db_constraint=True, to_field='id', related_name='codes', on_delete=OnDelete.CASCADE)),
                ('redirect_uri', fields.CharField(max_length=500)),
                ('scope', fields.CharField(max_length=255)),
                ('nonce', fields.CharField(null=True, max_length=255)),
                ('code_challenge', fields.CharField(max_length=128)),
                ('code_challenge_method', fields.CharField(max_length=8)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_code', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A single-use, short-lived authorization code (its hash), bound to client, redirect and PKCE.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OAuthToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('grant', fields.ForeignKeyField('zhilian.OAuthGrant', source_field='grant_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('client', fields.ForeignKeyField('zhilian.OAuthClient', source_field='client_id', db_constraint=True, to_field='id', related_name='tokens', on_delete=OnDelete.CASCADE)),
                ('access_jti', fields.CharField(unique=True, max_length=64)),
                ('access_expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('refresh_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('refresh_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('refresh_used_at', fields.DatetimeField(null=True, description='set when rotated, a second use is theft', auto_now=False, auto_now_add=False)),
                ('scope', fields.CharField(max_length=255)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'oauth_token', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'An access token (by its `jti`) and the refresh token issued with it (by its hash).'},
            bases=['Model'],
        ),
    ]
