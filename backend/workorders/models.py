"""Tables of the work-order engine: teams, categories, fixed QR points, cases, their history and photos.

Personal data stays encrypted at rest like everywhere else: the reporter's name and contact
(`*_cipher`, AES-GCM via FieldCipher) and every photo (EXIF stripped, then sealed). A case's
history (`WorkOrderEvent`) is append-only: rows are only ever inserted, and the model refuses
to update one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from backend.workorders.states import State


class Source(StrEnum):
    RESIDENT = "resident"  # 随手拍 by an app user (or 代报 by a helper)
    STAFF = "staff"  # entered by staff (phone call, walk-in, 网格员代报)
    DEVICE = "device"  # a device alarm (gate, e-bike charger)
    HEALTH = "health"  # an abnormal health reading
    OUTREACH = "outreach"  # certification outreach: an elder not reached this month
    PARTNER = "partner"  # filed by a city platform through Open311


class TeamKind(StrEnum):
    PROPERTY = "property"  # 物业
    GRID = "grid"  # 网格员
    COMMUNITY = "community"  # 社区
    OTHER = "other"


class PhotoKind(StrEnum):
    BEFORE = "before"  # the report's photo
    AFTER = "after"  # 整改后, by the handler
    PROGRESS = "progress"  # anything attached on the way


class HandlerTeam(Model):
    """A team that handles cases (物业, 网格员, 社区 …): its members are staff users."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="handler_teams", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=64)
    kind = fields.CharEnumField(TeamKind, max_length=16, default=TeamKind.OTHER)
    phone = fields.CharField(max_length=32, default="")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wo_team"
        unique_together = (("community", "name"),)


class TeamMember(Model):
    id = fields.IntField(primary_key=True)
    team = fields.ForeignKeyField("zhilian.HandlerTeam", related_name="members", on_delete=fields.CASCADE)
    staff = fields.ForeignKeyField("zhilian.StaffUser", related_name="team_memberships", on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wo_team_member"
        unique_together = (("team", "staff"),)


class Category(Model):
    """A kind of case in the community's tree, with its default team, deadlines and privacy."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="wo_categories", on_delete=fields.RESTRICT)
    parent = fields.ForeignKeyField("zhilian.Category", related_name="children", null=True,
                                    on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=32, description="local code, also the Open311 service_code")
    standard_code = fields.CharField(max_length=32, default="", description="the national classification's code, "
                                                                             "where one is mapped")
    name = fields.CharField(max_length=64)
    description = fields.CharField(max_length=500, default="")
    keywords = fields.CharField(max_length=200, default="")
    icon = fields.CharField(max_length=32, default="", description="pictogram name the apps show")
    default_team = fields.ForeignKeyField("zhilian.HandlerTeam", related_name="categories", null=True,
                                          on_delete=fields.SET_NULL)
    response_hours = fields.IntField(default=24, description="time to 签收 (response rate)")
    deadline_hours = fields.IntField(default=72, description="time to 办结 from submission")
    private = fields.BooleanField(default=False, description="visible to staff (and the reporter) only")
    resident_reportable = fields.BooleanField(default=True, description="offered to residents in the app")
    open311_type = fields.CharField(max_length=8, default="realtime", description="realtime | batch")
    after_photo_required = fields.BooleanField(default=True, description="closing needs a 整改后 photo")
    fields_spec = fields.JSONField(default=list, description="extra fields: [{code, label, datatype, required, "
                                                             "stage: report|close, values: [{key, name}]}]")
    active = fields.BooleanField(default=True)
    sort = fields.IntField(default=0)

    class Meta:
        table = "wo_category"
        unique_together = (("community", "code"),)


class QrPoint(Model):
    """A fixed place with a printed sign (lamp post, gate, charging shed, stair hall)."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="qr_points", on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=32, description="short code printed on the sign")
    name = fields.CharField(max_length=64)
    kind = fields.CharField(max_length=16, default="other", description="lamp_post | gate | charging_shed | "
                                                                          "stair_hall | other")
    address = fields.CharField(max_length=200, default="")
    grid = fields.CharField(max_length=32, default="", description="网格 the place belongs to")
    lat = fields.FloatField(null=True)
    long = fields.FloatField(null=True)
    token = fields.CharField(max_length=40, unique=True, description="what the QR code carries")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wo_point"
        unique_together = (("community", "code"),)


class WorkOrder(Model):
    """One case: where, what, who reported it (encrypted, hidden by default), its state and clock."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="work_orders", on_delete=fields.RESTRICT)
    category = fields.ForeignKeyField("zhilian.Category", related_name="work_orders", on_delete=fields.RESTRICT)
    source = fields.CharEnumField(Source, max_length=16)
    source_ref = fields.CharField(max_length=96, null=True, description="the originating record (alarm id, "
                                                                        "outreach month:resident) for idempotency")
    state = fields.CharEnumField(State, max_length=24, default=State.SUBMITTED, db_index=True)
    description = fields.TextField(default="")
    attributes = fields.JSONField(default=dict, description="the category's extra fields")
    # where: a fixed point, or an address / grid / lat-long; the phone's own location is only a hint
    point = fields.ForeignKeyField("zhilian.QrPoint", related_name="work_orders", null=True, on_delete=fields.SET_NULL)
    address = fields.CharField(max_length=200, default="")
    grid = fields.CharField(max_length=32, default="")
    lat = fields.FloatField(null=True)
    long = fields.FloatField(null=True)
    hint_lat = fields.FloatField(null=True, description="the reporting phone's location (a hint)")
    hint_long = fields.FloatField(null=True)
    # who: never leaves through Open311; shown to other residents only when show_reporter
    reporter_user = fields.ForeignKeyField("zhilian.AppUser", related_name="work_orders", null=True,
                                           on_delete=fields.SET_NULL)
    reporter_staff_id = fields.IntField(null=True)
    reporter_name_cipher = fields.CharField(max_length=255, null=True)
    reporter_contact_cipher = fields.CharField(max_length=512, null=True, description="partner-filed phone/email")
    show_reporter = fields.BooleanField(default=False)
    on_behalf = fields.BooleanField(default=False, description="代报: reported for an elder or offline resident")
    on_behalf_resident = fields.ForeignKeyField("zhilian.Resident", related_name="reported_for", null=True,
                                                on_delete=fields.SET_NULL)
    subject_resident = fields.ForeignKeyField("zhilian.Resident", related_name="work_orders_about", null=True,
                                              on_delete=fields.SET_NULL, description="the elder an outreach is for")
    partner = fields.CharField(max_length=64, default="", description="the Open311 client that filed it")
    # handling
    team = fields.ForeignKeyField("zhilian.HandlerTeam", related_name="work_orders", null=True,
                                  on_delete=fields.SET_NULL)
    assignee = fields.ForeignKeyField("zhilian.StaffUser", related_name="assigned_work_orders", null=True,
                                      on_delete=fields.SET_NULL)
    merged_into = fields.ForeignKeyField("zhilian.WorkOrder", related_name="duplicates", null=True,
                                         on_delete=fields.SET_NULL)
    responsible = fields.CharField(max_length=200, default="", description="who is responsible (不属于受理范围)")
    outcome = fields.CharField(max_length=64, default="")
    # the clock of the current round
    round = fields.IntField(default=1)
    round_started_at = fields.DatetimeField()
    response_due_at = fields.DatetimeField()
    due_at = fields.DatetimeField(db_index=True)
    warn_at = fields.DatetimeField()
    warned_at = fields.DatetimeField(null=True)
    escalated_at = fields.DatetimeField(null=True)
    extension_hours_requested = fields.IntField(null=True)
    # milestones (first of each, for the monthly figures)
    created_at = fields.DatetimeField()
    responded_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField()
    reopen_count = fields.IntField(default=0)
    on_time = fields.BooleanField(null=True, description="first resolution within the first round's deadline")
    satisfied = fields.BooleanField(null=True)
    callback_at = fields.DatetimeField(null=True)
    open311_token = fields.CharField(max_length=40, null=True, unique=True)
    version = fields.IntField(default=0, description="bumped by every move: two staff cannot both move one state")

    class Meta:
        table = "wo_case"
        unique_together = (("source", "source_ref"),)


class WorkOrderEvent(Model):
    """One line of a case's history: who, when, from → to, the note. Never changed once written."""

    id = fields.IntField(primary_key=True)
    work_order = fields.ForeignKeyField("zhilian.WorkOrder", related_name="events", on_delete=fields.CASCADE)
    at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=8, description="staff | app | system | partner")
    actor_id = fields.CharField(max_length=64, default="")
    actor_label = fields.CharField(max_length=64, default="")
    action = fields.CharField(max_length=32)
    from_state = fields.CharField(max_length=24, null=True)
    to_state = fields.CharField(max_length=24)
    note = fields.CharField(max_length=1000)
    details = fields.JSONField(default=dict)
    round = fields.IntField(default=1)

    class Meta:
        table = "wo_event"

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if self._saved_in_db:
            raise RuntimeError("work-order history is append-only")
        await super().save(*args, **kwargs)


class WorkOrderPhoto(Model):
    """A photo of a case, re-encoded without EXIF and encrypted like other personal data."""

    id = fields.IntField(primary_key=True)
    work_order = fields.ForeignKeyField("zhilian.WorkOrder", related_name="photos", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(PhotoKind, max_length=12)
    photo_cipher = fields.TextField()
    width = fields.IntField()
    height = fields.IntField()
    size = fields.IntField()
    round = fields.IntField(default=1)
    uploaded_by = fields.CharField(max_length=32, description="app:<id> | staff:<id>")
    created_at = fields.DatetimeField()

    class Meta:
        table = "wo_photo"


class Follower(Model):
    """An app user who said 我也遇到 (or whose duplicate was merged here): told of every step."""

    id = fields.IntField(primary_key=True)
    work_order = fields.ForeignKeyField("zhilian.WorkOrder", related_name="followers", on_delete=fields.CASCADE)
    app_user = fields.ForeignKeyField("zhilian.AppUser", related_name="followed_work_orders",
                                      on_delete=fields.CASCADE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wo_follower"
        unique_together = (("work_order", "app_user"),)


class Open311Key(Model):
    """An API key a city platform files requests with (only its SHA-256 is stored)."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="open311_keys", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=64)
    key_hash = fields.CharField(max_length=64, unique=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "wo_open311_key"
