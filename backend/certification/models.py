"""Tables of the certification domain.

A `Period` is one community's programme month. `ResidentMonth` holds each resident's status in
that period. An `Attempt` is the outcome of one liveness session; at most one `Certification`
exists per resident and period (a unique constraint, so two helpers racing yield exactly one).
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MonthStatus(StrEnum):
    PENDING = "pending"
    CERTIFIED = "certified"
    IN_REVIEW = "in_review"
    OVERDUE = "overdue"
    SUSPENDED = "suspended"
    EXEMPT = "exempt"


class Method(StrEnum):
    SELF = "self"
    HELPER = "helper"
    STAFF = "staff"
    HOME_VISIT = "home_visit"
    PASSIVE = "passive"


class Decision(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    FAIL = "fail"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Period(Model):
    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="periods", on_delete=fields.RESTRICT)
    programme = fields.CharField(max_length=32, default="elderly_subsidy")
    month = fields.CharField(max_length=7, description="YYYY-MM")
    due_day = fields.IntField(default=25)
    status = fields.CharEnumField(PeriodStatus, default=PeriodStatus.OPEN, max_length=8)
    opened_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "period"
        unique_together = (("community", "programme", "month"),)


class PeriodClosure(Model):
    """One close of a period and exactly what it changed, so a mistaken close can be undone.

    `changes` lists every status the close wrote: {"months": [[resident_month_id, before, after]],
    "residents": [[resident_id, before, after]]}; a reopen puts back exactly those (where nothing
    has changed them since) and records who reopened, when and why.
    """

    id = fields.IntField(primary_key=True)
    period = fields.ForeignKeyField("zhilian.Period", related_name="closures", on_delete=fields.CASCADE)
    closed_by = fields.IntField(null=True, description="staff user id")
    closed_at = fields.DatetimeField()
    early = fields.BooleanField(default=False, description="closed on or before the due day")
    reason = fields.CharField(max_length=200, default="")
    changes = fields.JSONField(default=dict)
    reopened_by = fields.IntField(null=True)
    reopened_at = fields.DatetimeField(null=True)
    reopen_reason = fields.CharField(max_length=200, default="")
    restored = fields.JSONField(null=True, description="what the reopen put back and what it left")

    class Meta:
        table = "period_closure"


class ResidentMonth(Model):
    """A resident's status in one period (the row the month board shows)."""

    id = fields.IntField(primary_key=True)
    period = fields.ForeignKeyField("zhilian.Period", related_name="resident_months", on_delete=fields.CASCADE)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="months", on_delete=fields.CASCADE)
    status = fields.CharEnumField(MonthStatus, default=MonthStatus.PENDING, max_length=16)
    exempt_reason = fields.CharField(max_length=200, default="")
    last_attempt_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "resident_month"
        unique_together = (("period", "resident"),)


class FaceTemplate(Model):
    """An enrolled face: encrypted embedding(s) plus the model that made them."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="face_templates", on_delete=fields.CASCADE)
    template_cipher = fields.TextField()
    model_id = fields.CharField(max_length=64)
    source = fields.CharField(max_length=24, description="staff_enrolment | approved_first | refresh")
    quality = fields.FloatField(default=0.0)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "face_template"


class Attempt(Model):
    """The outcome of one liveness session (or an HTTP upload of frames)."""

    id = fields.IntField(primary_key=True)
    session_id = fields.CharField(max_length=64, unique=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="attempts", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="attempts", on_delete=fields.CASCADE)
    method = fields.CharEnumField(Method, max_length=16)
    actor_kind = fields.CharField(max_length=8, description="app | staff")
    actor_id = fields.IntField()
    decision = fields.CharEnumField(Decision, max_length=8)
    reasons = fields.JSONField(default=list)
    scores = fields.JSONField(default=dict)
    best_frame_cipher = fields.TextField(null=True, description="encrypted JPEG kept for review, purged later")
    probe_cipher = fields.TextField(null=True, description="encrypted embeddings of the best frames (enrol on approval)")
    frame_purge_after = fields.DatetimeField(null=True, db_index=True)
    review_status = fields.CharEnumField(ReviewStatus, null=True, max_length=16)
    reviewed_by = fields.IntField(null=True)
    reviewed_at = fields.DatetimeField(null=True)
    review_reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "attempt"


class Certification(Model):
    """The accepted proof of life for a resident and period: at most one."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="certifications", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="certifications", on_delete=fields.CASCADE)
    method = fields.CharEnumField(Method, max_length=16)
    attempt = fields.ForeignKeyField("zhilian.Attempt", related_name="certification", null=True,
                                     on_delete=fields.SET_NULL)
    assisted_by = fields.CharField(max_length=32, default="", description="app:<id> | staff:<id>")
    certified_at = fields.DatetimeField()
    late = fields.BooleanField(default=False)
    back_pay_months = fields.JSONField(default=list, description="months owed after a suspension, YYYY-MM")
    assurance = fields.CharField(max_length=16, default="substantial")

    class Meta:
        table = "certification"
        unique_together = (("resident", "period"),)


class HomeVisit(Model):
    """Two staff members attest that they saw the resident alive at home."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="home_visits", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="home_visits", on_delete=fields.CASCADE)
    first_staff_id = fields.IntField()
    second_staff_id = fields.IntField(null=True)
    photo_cipher = fields.TextField()
    note = fields.CharField(max_length=500, default="")
    visited_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "home_visit"


class Device(Model):
    """A registered community device (door access, gate) that may report sightings."""

    id = fields.IntField(primary_key=True)
    community = fields.ForeignKeyField("zhilian.Community", related_name="devices", on_delete=fields.CASCADE)
    name = fields.CharField(max_length=64)
    public_key = fields.CharField(max_length=64, description="Ed25519 public key, base64")
    registered_by = fields.IntField(null=True, description="staff user who registered it and supplied its key, "
                                                           "never the one who confirms its sightings")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "device"


class PassiveSighting(Model):
    id = fields.IntField(primary_key=True)
    device = fields.ForeignKeyField("zhilian.Device", related_name="sightings", on_delete=fields.CASCADE)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="sightings", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="sightings", on_delete=fields.CASCADE)
    score = fields.FloatField()
    seen_at = fields.DatetimeField()
    nonce = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "passive_sighting"


class Reminder(Model):
    """A reminder sent (once) for a resident, period and kind to one recipient."""

    id = fields.IntField(primary_key=True)
    resident = fields.ForeignKeyField("zhilian.Resident", related_name="reminders", on_delete=fields.CASCADE)
    period = fields.ForeignKeyField("zhilian.Period", related_name="reminders", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16, description="due_soon | overdue")
    recipient_index = fields.CharField(max_length=64)
    channel = fields.CharField(max_length=16)
    sent_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "reminder"
        unique_together = (("resident", "period", "kind", "recipient_index"),)
