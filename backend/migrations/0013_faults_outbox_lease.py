from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0012_wofront_message_link')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboxEvent',
            name='leased_until',
            field=fields.DatetimeField(null=True, description='a worker is running it until then', auto_now=False, auto_now_add=False),
        ),
    ]
