from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0003_oauth')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Credential',
            fields=[
                ('leaf_hash', fields.CharField(unique=True, description='hex SHA-256 put on the chain', max_length=64)),
                ('anchor_index', fields.BigIntField(null=True, description='leaf index in the log')),
                ('anchor_tree_size', fields.BigIntField(null=True)),
                ('inclusion', fields.JSONField(null=True, description='inclusion proof bundle with the final checkpoint', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('anchored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('certification', fields.OneToOneField('zhilian.Certification', source_field='certification_id', db_constraint=True, to_field='id', related_name='credential', on_delete=OnDelete.CASCADE)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='credentials', on_delete=OnDelete.RESTRICT)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='credentials', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='credentials', on_delete=OnDelete.CASCADE)),
                ('document', fields.JSONField(description='the credential with its eddsa-jcs-2022 proof', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status_list', fields.IntField(description="number of the community's status list pair")),
                ('status_index', fields.IntField(description='random position in both lists')),
                ('revoked', fields.BooleanField(default=False)),
                ('suspended', fields.BooleanField(default=False)),
                ('status_reason', fields.CharField(default='', max_length=200)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'credential', 'app': 'zhilian', 'unique_together': (('community', 'status_list', 'status_index'),), 'pk_attr': 'id', 'table_description': 'The signed VC 2.0 document of one certification, with its status-list position.'},
            bases=['Anchored'],
        ),
        ops.CreateModel(
            name='Export',
            fields=[
                ('leaf_hash', fields.CharField(unique=True, description='hex SHA-256 put on the chain', max_length=64)),
                ('anchor_index', fields.BigIntField(null=True, description='leaf index in the log')),
                ('anchor_tree_size', fields.BigIntField(null=True)),
                ('inclusion', fields.JSONField(null=True, description='inclusion proof bundle with the final checkpoint', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('anchored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='exports', on_delete=OnDelete.RESTRICT)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='exports', on_delete=OnDelete.CASCADE)),
                ('department', fields.ForeignKeyField('zhilian.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='exports', on_delete=OnDelete.RESTRICT)),
                ('created_by', fields.IntField(description='staff user id')),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('xlsx', fields.BinaryField()),
                ('bundle', fields.BinaryField()),
                ('pdf', fields.BinaryField()),
                ('manifest', fields.JSONField(description='file hashes and what the export covers, its JCS hash is the leaf', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('counts', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'export', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': "One department's package for one period of one community."},
            bases=['Anchored'],
        ),
        ops.CreateModel(
            name='IssuerKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='issuer_keys', on_delete=OnDelete.CASCADE)),
                ('kid', fields.CharField(max_length=64)),
                ('public_multibase', fields.CharField(description='Multikey publicKeyMultibase (z6Mk...)', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('withdrawn_at', fields.DatetimeField(null=True, description='set after a compromise: dropped from the DID document', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'issuer_key', 'app': 'zhilian', 'unique_together': (('community', 'kid'),), 'pk_attr': 'id', 'table_description': "The public half of a community's Ed25519 issuing key, kept after rotation."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AppUser',
            name='wechat_openid',
            field=fields.CharField(null=True, description='set when signed in through WeChat', max_length=64),
        ),
    ]
