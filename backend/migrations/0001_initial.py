from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from backend.auth.models import Role
from backend.residents.models import BindingStatus, ResidentStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_kind', fields.CharField(description='staff | app | system', max_length=16)),
                ('actor_id', fields.CharField(max_length=64)),
                ('action', fields.CharField(db_index=True, max_length=64)),
                ('target_kind', fields.CharField(default='', max_length=32)),
                ('target_id', fields.CharField(default='', db_index=True, max_length=64)),
                ('community_id', fields.IntField(null=True, db_index=True)),
                ('ip', fields.CharField(default='', max_length=64)),
                ('request_id', fields.CharField(default='', max_length=64)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'audit_event', 'app': 'zhilian', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AuditHead',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('last_event_id', fields.BigIntField(default=0)),
                ('last_hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'audit_head', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A single row locked while appending, so concurrent workers extend one chain.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Community',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=64)),
                ('street', fields.CharField(default='', max_length=64)),
                ('district', fields.CharField(default='', max_length=64)),
                ('phone', fields.CharField(default='', description='service phone shown to residents', max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'community', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A 社区: staff and residents belong to exactly one.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Department',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=64)),
            ],
            options={'table': 'department', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A department that consumes certifications (民政, 人社, 卫健 …) and witnesses the chain.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboundMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(description='sms | wechat', max_length=16)),
                ('recipient_cipher', fields.CharField(max_length=255)),
                ('recipient_index', fields.CharField(db_index=True, max_length=64)),
                ('template', fields.CharField(max_length=64)),
                ('body', fields.TextField(description='rendered text (one-time codes only via the dev outbox)', unique=False)),
                ('status', fields.CharField(default='queued', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'outbound_message', 'app': 'zhilian', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('subject_kind', fields.CharField(description='staff | app', max_length=8)),
                ('subject_id', fields.IntField()),
                ('family_id', fields.UUIDField(db_index=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'refresh_token', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A rotating refresh token: only its hash is stored. Reuse of a spent one revokes its family.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Resident',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('public_id', fields.UUIDField(unique=True, description='pseudonymous id used in credentials')),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='residents', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(db_index=True, max_length=30)),
                ('national_id_cipher', fields.CharField(max_length=255)),
                ('national_id_index', fields.CharField(unique=True, max_length=64)),
                ('id_suffix_index', fields.CharField(db_index=True, description='keyed hash of the last 4', max_length=64)),
                ('birth_date', fields.DateField()),
                ('sex', fields.CharField(max_length=1)),
                ('phone_cipher', fields.CharField(null=True, max_length=255)),
                ('phone_index', fields.CharField(null=True, db_index=True, max_length=64)),
                ('address', fields.CharField(default='', max_length=200)),
                ('living_address', fields.CharField(default='', max_length=200)),
                ('programme_tier', fields.CharField(max_length=8)),
                ('status', fields.CharEnumField(default=ResidentStatus.ACTIVE, description='ACTIVE: active\nSUSPENDED: suspended\nMOVED: moved\nDECEASED: deceased', enum_type=ResidentStatus, max_length=16)),
                ('qr_version', fields.IntField(default=1)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'resident', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'An elder drawing the old-age subsidy.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AppUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('phone_cipher', fields.CharField(max_length=255)),
                ('phone_index', fields.CharField(unique=True, max_length=64)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', null=True, db_constraint=True, to_field='id', related_name='app_users', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('is_active', fields.BooleanField(default=True)),
            ],
            options={'table': 'app_user', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A resident or helper who signs in to the phone app with their phone number.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HelperBinding',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='helper_bindings', on_delete=OnDelete.CASCADE)),
                ('helper', fields.ForeignKeyField('zhilian.AppUser', source_field='helper_id', db_constraint=True, to_field='id', related_name='bindings', on_delete=OnDelete.CASCADE)),
                ('relation', fields.CharField(max_length=16)),
                ('status', fields.CharEnumField(default=BindingStatus.PENDING, description='PENDING: pending\nAPPROVED: approved\nREVOKED: revoked', enum_type=BindingStatus, max_length=16)),
                ('approved_by', fields.CharField(null=True, description='resident | staff:<id>', max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'helper_binding', 'app': 'zhilian', 'unique_together': (('resident', 'helper'),), 'pk_attr': 'id', 'table_description': 'A helper (child, neighbour, grid worker) allowed to certify for an elder once approved.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=64)),
                ('display_name', fields.CharField(max_length=64)),
                ('password_hash', fields.CharField(max_length=255)),
                ('role', fields.CharEnumField(description='COMMUNITY_STAFF: community_staff\nCOMMUNITY_ADMIN: community_admin\nDISTRICT_ADMIN: district_admin\nDEPARTMENT_OFFICER: department_officer\nAUDITOR: auditor\nPLATFORM_ADMIN: platform_admin', enum_type=Role, max_length=32)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', null=True, db_constraint=True, to_field='id', related_name='staff', on_delete=OnDelete.RESTRICT)),
                ('district', fields.CharField(default='', description='for district admins', max_length=64)),
                ('department', fields.ForeignKeyField('zhilian.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='officers', on_delete=OnDelete.RESTRICT)),
                ('totp_secret_cipher', fields.CharField(null=True, max_length=255)),
                ('totp_enabled', fields.BooleanField(default=False)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('last_login_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_user', 'app': 'zhilian', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(description='biometric | data_processing', max_length=32)),
                ('version', fields.CharField(max_length=16)),
                ('granted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('method', fields.CharField(description='paper | in_app | verbal_witnessed', max_length=32)),
                ('witnessed_by', fields.ForeignKeyField('zhilian.StaffUser', source_field='witnessed_by_id', null=True, db_constraint=True, to_field='id', related_name='witnessed_consents', on_delete=OnDelete.SET_NULL)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_record', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'Consent to process sensitive data (PIPL art. 29: separate consent for biometrics).'},
            bases=['Model'],
        ),
    ]
