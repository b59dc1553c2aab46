from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0005_audit_anchor')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboundMessage',
            name='read_at',
            field=fields.DatetimeField(null=True, description='when the recipient opened it in the app', auto_now=False, auto_now_add=False),
        ),
    ]
