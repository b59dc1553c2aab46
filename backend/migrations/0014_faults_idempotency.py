from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0013_faults_outbox_lease')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(description='who sent it: staff:<id> | app:<id>', max_length=64)),
                ('key', fields.CharField(max_length=128)),
                ('fingerprint', fields.CharField(description='SHA-256 of method, path, query and body', max_length=64)),
                ('owner', fields.CharField(default='', description='process running it while status is 0', max_length=32)),
                ('status', fields.IntField(default=0)),
                ('content_type', fields.CharField(default='', max_length=128)),
                ('body_cipher', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'idempotency_key', 'app': 'zhilian', 'unique_together': (('scope', 'key'),), 'pk_attr': 'id', 'table_description': 'One `Idempotency-Key` a caller sent: what the request was (its fingerprint) and what it answered.'},
            bases=['Model'],
        ),
    ]
