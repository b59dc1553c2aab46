from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0006_notification_read')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OAuthClient',
            name='id_token_signed_response_alg',
            field=fields.CharField(default='', description="OIDC Registration §2: ID token algorithm ('' = the provider's default)", max_length=8),
        ),
    ]
