"""Challenge sessions cut from an evaluation folder's clips (for face_eval and the tests).

The frames come from the frame table (``frame_table.py``: built from the folder's MANIFEST and
the engine's own signals, never from file names).  A genuine session joins one person's
segments in the order its challenge asks; the attack sessions join them in the wrong order,
swap the person half way, match against another person's template, run past the deadline,
freeze one frame, hold up a photo, or present each print / screen picture of the folder both
still and as a plane tilted in front of the camera (what a person holding a print does to fake a
head turn).  Every session says which kind of attack it is, so figures can be given per kind.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .dataset import Item, video_fps, video_frames
from .engine import FaceEngine
from .frame_table import ClipTable, Cut, file_digest
from .liveness import Challenge, Verdict
from .matching import FaceTemplate

MAX_TRIPLES_PER_CLIP = 4
MAX_SWAPS = 6
MAX_STILL_PHOTOS = 4
NO_ACTION_FRAMES = 240


@dataclass(frozen=True)
class Segment:
    file: str  # relative to the data folder: a clip, or a still image repeated
    start: int = 0
    stop: int = 0
    step: int = 2  # every 2nd frame: 12.5-15 fps, what a phone sends
    repeat: int = 0  # a still: this many copies of the image (or of the clip's frame ``start``)
    tilt: bool = False  # a still shown as a plane turning left, right, down and back (``repeat`` frames)

    @classmethod
    def of(cls, file: str, cut: Cut) -> Segment:
        return cls(file, cut.start, cut.stop, cut.step)


@dataclass
class Session:
    name: str
    challenge: Challenge
    segments: list[Segment]
    expect_pass: bool
    template_from: tuple[str, int] | None = None  # (clip, frame) to enroll from, if matching
    start_offset_s: float = 0.5  # first frame this long after the challenge was issued
    notes: str = field(default="")
    kind: str = "genuine"  # genuine | wrong_order | identity_swap | other_template | deadline | still_frame
    #                        | still_photo | no_actions | print | screen | print_moving | screen_moving
    attack: str | None = None  # print | screen | other (None for genuine)


def tilted_plane(img: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The picture as a flat card turned by yaw/pitch about its centre, seen by a pinhole camera."""
    h, w = img.shape[:2]
    f = 1.2 * max(w, h)
    ry, rx = np.radians(yaw_deg), np.radians(pitch_deg)
    rot_y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    pts = np.c_[corners - [w / 2, h / 2], np.zeros(4)] @ (rot_y @ rot_x).T + [0, 0, f]
    proj = (pts[:, :2] * f / pts[:, 2:] + [w / 2, h / 2]).astype(np.float32)
    m = cv2.getPerspectiveTransform(corners, proj)
    return cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def tilt_path(n: int) -> list[tuple[float, float]]:
    """(yaw, pitch) of a card turned to one side, the other, tipped down, and back: n frames."""
    keys = [(0, 0), (32, 0), (0, 0), (-32, 0), (0, 0), (0, 22), (0, 0)]
    out = []
    for k in range(n):
        x = k / max(n - 1, 1) * (len(keys) - 1)
        i = min(int(x), len(keys) - 2)
        a, b = keys[i], keys[i + 1]
        u = x - i
        out.append((a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u))
    return out


def _still(data: Path, seg: Segment) -> np.ndarray:
    if seg.file.endswith(".mp4"):
        return next(video_frames(data / seg.file, seg.start, seg.start + 1))[2]
    img = cv2.imread(str(data / seg.file))
    if img is None:
        raise ValueError(f"cannot read {seg.file}")
    return img


def session_frames(data: Path, s: Session) -> Iterator[tuple[float, np.ndarray]]:
    """Frames with a continuous clock, as if sent live one after another."""
    t = s.challenge.issued_at + s.start_offset_s
    for seg in s.segments:
        if seg.repeat:
            img = _still(data, seg)
            poses = tilt_path(seg.repeat) if seg.tilt else [None] * seg.repeat
            for k, pose in enumerate(poses):
                frame = img if pose is None else tilted_plane(img, *pose)
                if seg.tilt:  # a hand-held card: light flickers a little, never two identical frames
                    frame = cv2.convertScaleAbs(frame, alpha=1.0, beta=float((k % 5) - 2))
                yield t, frame
                t += 1 / 12.5
            continue
        dt = seg.step / video_fps(data / seg.file)
        for _i, _ts, frame in video_frames(data / seg.file, seg.start, seg.stop, seg.step):
            yield t, frame
            t += dt


def template_from_clip(engine: FaceEngine, data: Path, clip: str, frame_no: int) -> FaceTemplate:
    frames = [f for i, _t, f in video_frames(data / clip, frame_no, frame_no + 3)]
    return engine.enroll(frames)


def run_session(engine: FaceEngine, s: Session, data: Path):
    """Feed the session to a fresh tracker; the tracker's verdict (its ``planarity`` etc. readable after)."""
    return run_session_tracker(engine, s, data)[0]


def run_session_tracker(engine: FaceEngine, s: Session, data: Path) -> tuple[Verdict, object]:
    template = template_from_clip(engine, data, *s.template_from) if s.template_from else None
    tr = engine.tracker(s.challenge, template=template)
    for t, frame in session_frames(data, s):
        if tr.finished:
            break
        tr.feed(frame, t)
    return tr.verdict(), tr


def _ch(*actions: str, ttl: float = 45.0) -> Challenge:
    return Challenge(tuple(actions), nonce="eval", issued_at=1000.0, ttl_s=ttl)


def _sweeps(order: tuple[str, ...]) -> bool:
    return any({a, b} == {"turn_left", "turn_right"} for a, b in itertools.pairwise(order))


def valid_orders(t: ClipTable, size: int) -> list[tuple[str, ...]]:
    """Orders of the clip's actions a challenge may ask and its segments can perform: no segment
    shows an action asked later (a wrong order), never left and right back to back."""
    out = []
    for order in itertools.permutations(sorted(t.actions), size):
        if _sweeps(order):
            continue
        if any(t.actions[a].also & set(order[i + 1:]) for i, a in enumerate(order)):
            continue
        out.append(order)
    return out


def performed(t: ClipTable, order: tuple[str, ...]) -> list[Segment]:
    """The clip's quiet frontal lead-in (a session starts with the face looking ahead), then the actions."""
    lead = [Segment(t.file, *t.lead_in)] if t.lead_in else []
    return lead + [Segment.of(t.file, t.actions[a]) for a in order]


def _label(t: ClipTable) -> str:
    return Path(t.file).stem


def build_sessions(tables: list[ClipTable], items: list[Item], data: Path | None = None) -> list[Session]:
    """Genuine sessions from each clip's actions; then every kind of attack the folder allows."""
    S: list[Session] = []
    acting = [t for t in tables if t.actions]
    for t in acting:
        orders = valid_orders(t, 1) + valid_orders(t, 2) + valid_orders(t, 3)[:MAX_TRIPLES_PER_CLIP]
        for order in orders:
            S.append(Session(f"{_label(t)} {','.join(order)}", _ch(*order), performed(t, order), True))
        pairs = valid_orders(t, 2)
        if pairs and t.still:
            S.append(Session(f"{_label(t)} {','.join(pairs[0])} + own template", _ch(*pairs[0]),
                             performed(t, pairs[0]), True, template_from=(t.file, t.still[0])))
    # --- attacks by people who know the challenge only partly, or not at all ----------------
    for t in acting:
        pairs = valid_orders(t, 2)
        if pairs:  # performed a then b, asked b then a: a wrong order (or, with a blink, b never done)
            p = sorted(pairs, key=lambda p: "blink" in p)[0]
            S.append(Session(f"{_label(t)} wrong order (asked {p[1]},{p[0]})", _ch(p[1], p[0]), performed(t, p),
                             False, kind="wrong_order", attack="other"))
        if pairs:  # the deadline falls while the second action is being done
            p = pairs[0]
            segs = performed(t, p)
            ttl = 0.5 + sum((g.stop - g.start) / t.fps for g in segs[:-1]) + 0.1
            S.append(Session(f"{_label(t)} after the deadline", _ch(*p, ttl=ttl), segs, False,
                             kind="deadline", attack="other"))
    swaps = 0
    for a, b in itertools.permutations(acting, 2):
        if swaps >= MAX_SWAPS or a.identity == b.identity:
            continue
        first = sorted(a.actions)[0]
        second = next((x for x in sorted(b.actions) if x != first and not _sweeps((first, x))
                       and x not in a.actions[first].also), None)
        if second is None:
            continue
        swaps += 1
        S.append(Session(f"identity swap {_label(a)} -> {_label(b)}", _ch(first, second),
                         [Segment.of(a.file, a.actions[first]), Segment.of(b.file, b.actions[second])], False,
                         kind="identity_swap", attack="other"))
    for a, b in itertools.permutations(acting, 2):
        pairs = valid_orders(a, 2)
        if a.identity != b.identity and pairs and b.still:
            S.append(Session(f"{_label(a)} with {_label(b)}'s template", _ch(*pairs[0]), performed(a, pairs[0]),
                             False, template_from=(b.file, b.still[0]), kind="other_template", attack="other"))
            break
    for t in tables:
        if t.lead_in:
            S.append(Session(f"{_label(t)} still frame x40", _ch("blink", "turn_left"),
                             [Segment(t.file, t.lead_in[0], repeat=40)], False, kind="still_frame", attack="other"))
        missing = [a for a in ("blink", "turn_left", "open_mouth", "turn_right") if a not in t.actions]
        ask = next((p for p in itertools.combinations(missing, 2) if not _sweeps(p)), None)
        if ask and t.n_frames:
            S.append(Session(f"{_label(t)} asked {ask[0]},{ask[1]} (not in the clip)", _ch(*ask),
                             [Segment(t.file, 0, min(t.n_frames, NO_ACTION_FRAMES))], False, kind="no_actions",
                             attack="other"))
    # --- pictures: genuine photos held up, prints and screens still and tilted ----------------
    def digest(it: Item) -> str:
        return file_digest(data / it.file) if data is not None else it.file

    attack_ids = {it.identity for it in items if it.is_attack}
    photos = sorted((it for it in items if it.kind == "genuine" and it.identity in attack_ids), key=digest)
    for it in photos[:MAX_STILL_PHOTOS]:
        S.append(Session(f"photo {Path(it.file).stem} x40", _ch("blink", "open_mouth"), [Segment(it.file, repeat=40)],
                         False, kind="still_photo", attack="print"))
        S.append(Session(f"photo {Path(it.file).stem} tilted", _ch("turn_left", "nod"), [Segment(it.file, repeat=60, tilt=True)], False,
                         kind="print_moving", attack="print"))
    for it in sorted((it for it in items if it.is_attack), key=digest):
        S.append(Session(f"{it.kind} {Path(it.file).stem} x20", _ch("blink", "turn_right"),
                         [Segment(it.file, repeat=20)], False, kind=it.kind, attack=it.kind))
        S.append(Session(f"{it.kind} {Path(it.file).stem} tilted", _ch("turn_left", "nod"),
                         [Segment(it.file, repeat=60, tilt=True)], False, kind=f"{it.kind}_moving", attack=it.kind))
    return S
