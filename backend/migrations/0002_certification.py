from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from backend.certification.models import Decision, Method, MonthStatus, PeriodStatus, ReviewStatus
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('zhilian', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Device',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='devices', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=64)),
                ('public_key', fields.CharField(description='Ed25519 public key, base64', max_length=64)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'device', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'A registered community device (door access, gate) that may report sightings.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FaceTemplate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='face_templates', on_delete=OnDelete.CASCADE)),
                ('template_cipher', fields.TextField(unique=False)),
                ('model_id', fields.CharField(max_length=64)),
                ('source', fields.CharField(description='staff_enrolment | approved_first | refresh', max_length=24)),
                ('quality', fields.FloatField(default=0.0)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'face_template', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'An enrolled face: encrypted embedding(s) plus the model that made them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(db_index=True, max_length=48)),
                ('dedupe_key', fields.CharField(unique=True, max_length=128)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('processed_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
            ],
            options={'table': 'outbox_event', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'One unit of deferred work (anchor a credential, issue a credential, send a reminder …).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Period',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('community', fields.ForeignKeyField('zhilian.Community', source_field='community_id', db_constraint=True, to_field='id', related_name='periods', on_delete=OnDelete.RESTRICT)),
                ('programme', fields.CharField(default='elderly_subsidy', max_length=32)),
                ('month', fields.CharField(description='YYYY-MM', max_length=7)),
                ('due_day', fields.IntField(default=25)),
                ('status', fields.CharEnumField(default=PeriodStatus.OPEN, description='OPEN: open\nCLOSED: closed', enum_type=PeriodStatus, max_length=8)),
                ('opened_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'period', 'app': 'zhilian', 'unique_together': (('community', 'programme', 'month'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('session_id', fields.CharField(unique=True, max_length=64)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='attempts', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='attempts', on_delete=OnDelete.CASCADE)),
                ('method', fields.CharEnumField(description='SELF: self\nHELPER: helper\nSTAFF: staff\nHOME_VISIT: home_visit\nPASSIVE: passive', enum_type=Method, max_length=16)),
                ('actor_kind', fields.CharField(description='app | staff', max_length=8)),
                ('actor_id', fields.IntField()),
                ('decision', fields.CharEnumField(description='PASS: pass\nREVIEW: review\nFAIL: fail', enum_type=Decision, max_length=8)),
                ('reasons', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('scores', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('best_frame_cipher', fields.TextField(null=True, description='encrypted JPEG kept for review, purged later', unique=False)),
                ('probe_cipher', fields.TextField(null=True, description='encrypted embeddings of the best frames (enrol on approval)', unique=False)),
                ('frame_purge_after', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('review_status', fields.CharEnumField(null=True, description='PENDING: pending\nAPPROVED: approved\nREJECTED: rejected', enum_type=ReviewStatus, max_length=16)),
                ('reviewed_by', fields.IntField(null=True)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('review_reason', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'attempt', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'The outcome of one liveness session (or an HTTP upload of frames).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Certification',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='certifications', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='certifications', on_delete=OnDelete.CASCADE)),
                ('method', fields.CharEnumField(description='SELF: self\nHELPER: helper\nSTAFF: staff\nHOME_VISIT: home_visit\nPASSIVE: passive', enum_type=Method, max_length=16)),
                ('attempt', fields.ForeignKeyField('zhilian.Attempt', source_field='attempt_id', null=True, db_constraint=True, to_field='id', related_name='certification', on_delete=OnDelete.SET_NULL)),
                ('assisted_by', fields.CharField(default='', description='app:<id> | staff:<id>', max_length=32)),
                ('certified_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('late', fields.BooleanField(default=False)),
                ('back_pay_months', fields.JSONField(default=list, description='months owed after a suspension, YYYY-MM', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('assurance', fields.CharField(default='substantial', max_length=16)),
            ],
            options={'table': 'certification', 'app': 'zhilian', 'unique_together': (('resident', 'period'),), 'pk_attr': 'id', 'table_description': 'The accepted proof of life for a resident and period: at most one.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HomeVisit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='home_visits', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='home_visits', on_delete=OnDelete.CASCADE)),
                ('first_staff_id', fields.IntField()),
                ('second_staff_id', fields.IntField(null=True)),
                ('photo_cipher', fields.TextField(unique=False)),
                ('note', fields.CharField(default='', max_length=500)),
                ('visited_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'home_visit', 'app': 'zhilian', 'pk_attr': 'id', 'table_description': 'Two staff members attest that they saw the resident alive at home.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PassiveSighting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('device', fields.ForeignKeyField('zhilian.Device', source_field='device_id', db_constraint=True, to_field='id', related_name='sightings', on_delete=OnDelete.CASCADE)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='sightings', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='sightings', on_delete=OnDelete.CASCADE)),
                ('score', fields.FloatField()),
                ('seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('nonce', fields.CharField(unique=True, max_length=64)),
            ],
            options={'table': 'passive_sighting', 'app': 'zhilian', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Reminder',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='reminders', on_delete=OnDelete.CASCADE)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='reminders', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(description='due_soon | overdue', max_length=16)),
                ('recipient_index', fields.CharField(max_length=64)),
                ('channel', fields.CharField(max_length=16)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'reminder', 'app': 'zhilian', 'unique_together': (('resident', 'period', 'kind', 'recipient_index'),), 'pk_attr': 'id', 'table_description': 'A reminder sent (once) for a resident, period and kind to one recipient.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ResidentMonth',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('period', fields.ForeignKeyField('zhilian.Period', source_field='period_id', db_constraint=True, to_field='id', related_name='resident_months', on_delete=OnDelete.CASCADE)),
                ('resident', fields.ForeignKeyField('zhilian.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='months', on_delete=OnDelete.CASCADE)),
                ('status', fields.CharEnumField(default=MonthStatus.PENDING, description='PENDING: pending\nCERTIFIED: certified\nIN_REVIEW: in_review\nOVERDUE: overdue\nSUSPENDED: suspended\nEXEMPT: exempt', enum_type=MonthStatus, max_length=16)),
                ('exempt_reason', fields.CharField(default='', max_length=200)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'resident_month', 'app': 'zhilian', 'unique_together': (('period', 'resident'),), 'pk_attr': 'id', 'table_description': "A resident's status in one period (the row the month board shows)."},
            bases=['Model'],
        ),
    ]
