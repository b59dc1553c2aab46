"""Request bodies and query strings of the work-order routes (validated and documented in OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from backend.http import Schema

PointKind = Literal["lamp_post", "gate", "charging_shed", "stair_hall", "other"]
Lat = Field(default=None, ge=-90, le=90)
Long = Field(default=None, ge=-180, le=180)


class CommunityQuery(Schema):
    community_id: int | None = None


class FieldSpec(Schema):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    label: str = Field(min_length=1, max_length=64)
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"] = "string"
    required: bool = False
    stage: Literal["report", "close"] = "report"
    values: list[dict[str, str]] = Field(default_factory=list, max_length=50)


class CategoryCreate(Schema):
    community_id: int | None = None
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=64)
    parent_id: int | None = None
    standard_code: str = Field(default="", max_length=32)
    description: str = Field(default="", max_length=500)
    keywords: str = Field(default="", max_length=200)
    icon: str = Field(default="", max_length=32)
    default_team_id: int | None = None
    response_hours: int = Field(default=24, ge=1, le=24 * 30)
    deadline_hours: int = Field(default=72, ge=1, le=24 * 90)
    private: bool = False
    resident_reportable: bool = True
    open311_type: Literal["realtime", "batch"] = "realtime"
    after_photo_required: bool = True
    fields_spec: list[FieldSpec] = Field(default_factory=list, max_length=20)


class CategoryUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    standard_code: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=500)
    keywords: str | None = Field(default=None, max_length=200)
    icon: str | None = Field(default=None, max_length=32)
    default_team_id: int | None = None
    response_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    deadline_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    private: bool | None = None
    resident_reportable: bool | None = None
    open311_type: Literal["realtime", "batch"] | None = None
    after_photo_required: bool | None = None
    active: bool | None = None
    fields_spec: list[FieldSpec] | None = Field(default=None, max_length=20)


class TeamCreate(Schema):
    community_id: int | None = None
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["property", "grid", "community", "other"] = "other"
    phone: str = Field(default="", max_length=32)


class MemberAdd(Schema):
    staff_id: int


class PointCreate(Schema):
    community_id: int | None = None
    name: str = Field(min_length=1, max_length=64)
    kind: PointKind = "other"
    code: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")
    address: str = Field(default="", max_length=200)
    grid: str = Field(default="", max_length=32)
    lat: float | None = Lat
    long: float | None = Long


class SignsBody(Schema):
    point_ids: list[int] = Field(min_length=1, max_length=500)


class StaffReport(Schema):
    """A case entered by staff; `on_behalf_resident_id` marks a 代报 for an offline resident."""

    community_id: int | None = None
    category_id: int
    description: str = Field(min_length=1, max_length=4000)
    point_id: int | None = None
    address: str = Field(default="", max_length=200)
    grid: str = Field(default="", max_length=32)
    lat: float | None = Lat
    long: float | None = Long
    on_behalf_resident_id: int | None = None
    contact_name: str | None = Field(default=None, max_length=30)
    contact_phone: str | None = Field(default=None, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)


class AppReport(Schema):
    """随手拍: scan a point (`point`: the scanned text) or give an address / position; photos follow."""

    category_id: int
    description: str = Field(default="", max_length=4000)
    point: str | None = Field(default=None, max_length=300, description="the scanned sign (token or app link)")
    community_id: int | None = None
    address: str = Field(default="", max_length=200)
    lat: float | None = Lat
    long: float | None = Long
    hint_lat: float | None = Field(default=None, ge=-90, le=90, description="the phone's position: a hint only")
    hint_long: float | None = Field(default=None, ge=-180, le=180)
    show_reporter: bool = Field(default=False, description="show my name to other residents (hidden by default)")
    reporter_name: str | None = Field(default=None, max_length=30)
    on_behalf_resident_id: int | None = Field(default=None, description="代报 for an elder I help")
    attributes: dict[str, Any] = Field(default_factory=dict)


class MoveBody(Schema):
    """One move of the state machine; which extra fields it needs is in the move table."""

    action: str = Field(min_length=1, max_length=32)
    note: str = Field(min_length=1, max_length=1000)
    team_id: int | None = None
    assignee_id: int | None = None
    into_id: int | None = None
    responsible: str | None = Field(default=None, max_length=200)
    extension_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    satisfied: bool | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    photo_ids: list[int] = Field(default_factory=list, max_length=20)


class CallbackBody(Schema):
    """解决了吗？满意吗？ — "没解决" (resolved=false) reopens the case."""

    resolved: bool
    satisfied: bool | None = None
    note: str = Field(default="", max_length=1000)


class BoardQuery(Schema):
    community_id: int | None = None
    state: str | None = Field(default=None, pattern=r"^(open|closed|submitted|accepted|dispatched|in_progress|"
                                                    r"pending_check|resolved|called_back|returned|"
                                                    r"extension_requested|duplicate|out_of_scope|reopened)$")
    category_id: int | None = None
    team_id: int | None = None
    source: Literal["resident", "staff", "device", "health", "outreach", "partner"] | None = None
    clock: Literal["on_time", "due_soon", "overdue"] | None = None
    q: str | None = Field(default=None, max_length=50)
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=20, ge=1, le=200)


class AppListQuery(Schema):
    scope: Literal["mine", "following", "community"] = "mine"
    community_id: int | None = None
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=20, ge=1, le=100)


class DuplicatesQuery(Schema):
    category_id: int
    point: str | None = Field(default=None, max_length=300)
    point_id: int | None = None
    community_id: int | None = None
    lat: float | None = Lat
    long: float | None = Long


class ScanQuery(Schema):
    t: str = Field(min_length=4, max_length=300, description="the scanned sign: token or app link")


class AppCategoriesQuery(Schema):
    community_id: int | None = None
    point: str | None = Field(default=None, max_length=300)


class FiguresQuery(Schema):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    community_id: int | None = None
    format: Literal["json", "csv", "xlsx"] = "json"


class Open311KeyCreate(Schema):
    community_id: int | None = None
    name: str = Field(min_length=1, max_length=64)
