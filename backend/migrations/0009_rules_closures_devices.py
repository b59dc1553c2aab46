"""Issue 13 (rules): period closures with what they changed, and who registered each device."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0008_workorders')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PeriodClosure',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='closures', on_delete=OnDelete.CASCADE)),
                ('closed_by', fields.IntField(null=True, description='staff user id')),
                ('closed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('early', fields.BooleanField(default=False, description='closed on or before the due day')),
                ('reason', fields.CharField(default='', max_length=200)),
                ('changes', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reopened_by', fields.IntField(null=True)),
                ('reopened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reopen_reason', fields.CharField(default='', max_length=200)),
                ('restored', fields.JSONField(null=True, description='what the reopen put back and what it left', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'period_closure', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'One close of a period and exactly what it changed, so a mistaken close can be undone.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Device',
            name='registered_by',
            field=fields.IntField(null=True, description='staff user who registered it and supplied its key, never the one who confirms its sightings'),
        ),
        # Devices registered before the registrant was recorded: take it from the audit trail
        # (every registration through the API was audited with its actor).
        ops.RunSQL(
            "UPDATE device SET registered_by = (SELECT CAST(a.actor_id AS INTEGER) FROM audit_event a"
            " WHERE a.action = 'device.register' AND a.actor_kind = 'staff' AND a.target_kind = 'device'"
            " AND a.target_id = CAST(device.id AS VARCHAR(64)) ORDER BY a.id LIMIT 1)"
            " WHERE registered_by IS NULL",
            reverse_sql="",
        ),
    ]
