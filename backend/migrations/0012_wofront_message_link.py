from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0011_auth_totp_pending')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboundMessage',
            name='link',
            field=fields.CharField(null=True, description="the app screen this message is about (a case), else the one of its template", max_length=64),
        ),
    ]
