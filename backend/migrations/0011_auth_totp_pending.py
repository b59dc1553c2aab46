from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0010_rules_resident_per_community')]

    initial = False

    operations = [
        ops.AddField(
            model_name='StaffUser',
            name='totp_pending_cipher',
            field=fields.CharField(null=True, description='a replacement secret, in force once confirmed with a code from it', max_length=255),
        ),
    ]
