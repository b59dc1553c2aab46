from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0004_credentials_exports')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditAnchor',
            fields=[
                ('leaf_hash', fields.CharField(unique=True, description='hex SHA-256 put on the chain', max_length=64)),
                ('anchor_index', fields.BigIntField(null=True, description='leaf index in the log')),
                ('anchor_tree_size', fields.BigIntField(null=True)),
                ('inclusion', fields.JSONField(null=True, description='inclusion proof bundle with the final checkpoint', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('anchored_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('last_event_id', fields.BigIntField(unique=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'audit_anchor', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'The chain head at some moment, put on the chain: the whole trail up to it is then fixed.'},
            bases=['Anchored'],
        ),
    ]
