"""The work-order rules without a server: the move table, the clock, distances and photo cleaning."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import ExifTags, Image

from backend.errors import ValidationFailed
from backend.workorders import clock, geo, photos
from backend.workorders.states import (
    CLOSED_STATES,
    MOVES,
    STATE_LABELS,
    MoveRefused,
    Need,
    Party,
    State,
    allowed_actions,
    check_move,
    clock_holder,
    open311_status,
)

D, H, A, R, SYS = Party.DISPATCHER, Party.HANDLER, Party.APPROVER, Party.REPORTER, Party.SYSTEM

# (action, from, parties, expected target or the refusal code)
CASES = [
    ("accept", State.SUBMITTED, {D}, State.ACCEPTED),
    ("accept", State.SUBMITTED, {SYS}, State.ACCEPTED),
    ("accept", State.SUBMITTED, {H}, "workorder.not_your_move"),
    ("accept", State.SUBMITTED, {R}, "workorder.not_your_move"),
    ("accept", State.ACCEPTED, {D}, "workorder.wrong_state"),
    ("dispatch", State.ACCEPTED, {D}, State.DISPATCHED),
    ("dispatch", State.REOPENED, {D}, State.DISPATCHED),
    ("dispatch", State.SUBMITTED, {D}, "workorder.wrong_state"),
    ("start", State.DISPATCHED, {H}, State.IN_PROGRESS),
    ("start", State.DISPATCHED, {D}, "workorder.not_your_move"),
    ("return", State.DISPATCHED, {H}, State.RETURNED),
    ("return", State.IN_PROGRESS, {H}, State.RETURNED),
    ("return", State.IN_PROGRESS, {D}, "workorder.not_your_move"),
    ("reassign", State.RETURNED, {D}, State.DISPATCHED),
    ("reassign", State.IN_PROGRESS, {D}, State.DISPATCHED),
    ("reassign", State.RETURNED, {H}, "workorder.not_your_move"),
    ("reject_return", State.RETURNED, {D}, State.DISPATCHED),
    ("request_extension", State.IN_PROGRESS, {H}, State.EXTENSION_REQUESTED),
    ("request_extension", State.DISPATCHED, {H}, "workorder.wrong_state"),
    ("approve_extension", State.EXTENSION_REQUESTED, {A}, State.IN_PROGRESS),
    ("approve_extension", State.EXTENSION_REQUESTED, {D, H}, "workorder.not_your_move"),
    ("deny_extension", State.EXTENSION_REQUESTED, {A}, State.IN_PROGRESS),
    ("submit", State.IN_PROGRESS, {H}, State.PENDING_CHECK),
    ("submit", State.IN_PROGRESS, {D, A}, "workorder.not_your_move"),
    ("verify", State.PENDING_CHECK, {D}, State.RESOLVED),
    ("verify", State.PENDING_CHECK, {H}, "workorder.not_your_move"),
    ("send_back", State.PENDING_CHECK, {D}, State.IN_PROGRESS),
    ("callback", State.RESOLVED, {R}, State.CALLED_BACK),
    ("callback", State.RESOLVED, {D}, State.CALLED_BACK),
    ("callback", State.PENDING_CHECK, {R}, "workorder.wrong_state"),
    ("reopen", State.RESOLVED, {R}, State.REOPENED),
    ("reopen", State.CALLED_BACK, {R}, "workorder.wrong_state"),
    ("merge", State.SUBMITTED, {D}, State.DUPLICATE),
    ("merge", State.RESOLVED, {D}, "workorder.wrong_state"),
    ("out_of_scope", State.ACCEPTED, {D}, State.OUT_OF_SCOPE),
    ("out_of_scope", State.IN_PROGRESS, {D}, "workorder.wrong_state"),
    ("fly", State.SUBMITTED, {D}, "workorder.unknown_action"),
]


@pytest.mark.parametrize(("action", "state", "parties", "expected"), CASES)
def test_the_move_table(action, state, parties, expected):
    if isinstance(expected, State):
        assert check_move(action, state, parties).target == expected
    else:
        with pytest.raises(MoveRefused) as refused:
            check_move(action, state, parties)
        assert refused.value.code == expected
        assert refused.value.message  # a reason in words for the person


def test_no_move_leaves_a_final_state_and_every_state_is_reachable():
    for final in (State.CALLED_BACK, State.DUPLICATE, State.OUT_OF_SCOPE):
        assert allowed_actions(final, set(Party)) == []
    reachable = {State.SUBMITTED} | {m.target for m in MOVES.values()}
    assert reachable == set(State)
    assert set(STATE_LABELS) == set(State)


def test_needs_of_the_side_paths():
    assert Need.TEAM in MOVES["reassign"].needs and Need.INTO in MOVES["merge"].needs
    assert Need.RESPONSIBLE in MOVES["out_of_scope"].needs and Need.EXTENSION in MOVES["request_extension"].needs
    assert Need.AFTER_PHOTO in MOVES["submit"].needs and Need.SATISFACTION in MOVES["callback"].needs


def test_open311_status_and_who_holds_the_clock():
    assert {s for s in State if open311_status(s) == "closed"} == set(CLOSED_STATES)
    assert open311_status(State.REOPENED) == "open" and open311_status(State.RESOLVED) == "closed"
    assert clock_holder(State.RETURNED) == "dispatcher"  # 退单: the clock runs on, at the dispatcher
    assert clock_holder(State.IN_PROGRESS) == "handler" and clock_holder(State.RESOLVED) is None


T0 = datetime(2026, 5, 1, tzinfo=UTC)


def test_clock_warns_at_80_and_escalates_at_100_percent_once():
    due = clock.due_at(T0, 10)
    warn = clock.warn_at(T0, due)
    assert warn == T0 + timedelta(hours=8)
    at = {h: clock.alarms_due(running=True, warn=warn, due=due, warned=None, escalated=None, now=T0 + timedelta(hours=h))
          for h in (7.9, 8, 10)}
    assert (at[7.9].warn, at[7.9].escalate) == (False, False)
    assert (at[8].warn, at[8].escalate) == (True, False)
    assert (at[10].warn, at[10].escalate) == (True, True)  # found late: both at once
    assert clock.alarms_due(running=True, warn=warn, due=due, warned=T0, escalated=T0, now=T0 + timedelta(hours=11)) \
        == clock.Alarms(False, False)
    assert not clock.alarms_due(running=False, warn=warn, due=due, warned=None, escalated=None,
                                now=T0 + timedelta(hours=20)).escalate
    assert [clock.status(running=True, warn=warn, due=due, now=T0 + timedelta(hours=h)) for h in (1, 9, 10)] == \
        ["on_time", "due_soon", "overdue"]


def test_distances():
    metre = 1 / 111_195
    assert abs(geo.distance_m(30.92, 121.47, 30.92 + 50 * metre, 121.47) - 50) < 0.05
    lo_lat, hi_lat, lo_long, hi_long = geo.box(30.92, 121.47, 50)
    assert lo_lat < 30.92 - 49 * metre and hi_lat > 30.92 + 49 * metre and hi_long - lo_long > 2 * 49 * metre
    assert not geo.valid(91, 0) and geo.valid(-33.9, 151.2)


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (64, 48), "red")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "UnitCam"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 5.0, 30.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_photos_lose_their_exif_and_are_checked_by_content():
    original = _jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    clean = photos.clean(original)
    reread = Image.open(io.BytesIO(clean.data))
    assert reread.format == "JPEG" and len(reread.getexif()) == 0 and b"UnitCam" not in clean.data
    png = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 255, 128)).save(png, "PNG")
    assert Image.open(io.BytesIO(photos.clean(png.getvalue()).data)).mode == "RGB"
    for bad, code in ((b"", "workorder.photo_missing"), (b"GIF89a" + b"\0" * 100, "workorder.photo_type"),
                      (b"\xff\xd8\xff" + b"\0" * 50, "workorder.photo_type"),
                      (b"\0" * (photos.MAX_BYTES + 1), "workorder.photo_too_large")):
        with pytest.raises(ValidationFailed) as refused:
            photos.clean(bad)
        assert refused.value.code == code
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8)).save(tiny, "JPEG")
    with pytest.raises(ValidationFailed):
        photos.clean(tiny.getvalue())
