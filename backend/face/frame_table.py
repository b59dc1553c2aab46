"""The frame table: which frames of each evaluation clip perform which challenge action.

One source for the tests and for ``scripts/bench/face_eval.py``, built from any folder laid out
like ``../shared/facedata``, never from file names.  The MANIFEST notes say what a clip shows
(measured blink frames, yaw and pitch ranges, how many frames the mouth is open); the blink
segments come straight from the notes' frame numbers, and the turns and the mouth opening (the
notes give ranges and counts, not frames) are located in the clip by the engine's own per-frame
yaw and mouth signals.  An action the notes do not show is never asked of that clip; one the
notes show but the engine cannot find cleanly is reported as a problem, not guessed.

A segment shows its action and nothing a challenge could count against it: a turn segment
starts and ends near frontal with the mouth closed, a mouth segment stays frontal, a blink
segment has open eyes before the blink (the detector's baseline) and no turn.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .config import FaceConfig
from .dataset import Item, video_frames
from .errors import FaceError

TURN_SIGN = {"turn_left": 1.0, "turn_right": -1.0}  # engine yaw > 0 = the subject's own left


@dataclass(frozen=True)
class ClipNotes:
    """What a clip's MANIFEST note says it shows (None where the note does not say)."""

    frames: int | None
    fps: float | None
    blinks: tuple[tuple[int, int, bool], ...]  # (first, last, long) frame numbers
    yaw: tuple[float, float] | None  # degrees, min..max
    pitch: tuple[float, float] | None
    mouth_max: float | None  # largest mouth opening (MAR)
    mouth_frames: int | None  # frames above the note's mouth threshold
    measured: bool  # the note carries the "measured:" block at all


_NUM = r"-?\d+(?:\.\d+)?"


def parse_notes(notes: str) -> ClipNotes:
    """Parse a video's MANIFEST note; fields the note lacks stay None / empty (never an error)."""
    frames = re.search(r"(\d+) frames\s*@\s*(" + _NUM + r")\s*fps", notes)
    blinks: list[tuple[int, int, bool]] = []
    b = re.search(r"blinks=\d+ at frames ([^;]*)", notes)
    if b:
        listed = re.sub(r"\((?!long\))[^)]*\)", "", b.group(1))  # drop "(method ...)", keep "(long)"
        for m in re.finditer(r"(\d+)(?:-(\d+))?\s*(\(long\))?", listed):
            first = int(m.group(1))
            blinks.append((first, int(m.group(2) or first), bool(m.group(3))))
    yaw = re.search(r"yaw (" + _NUM + r")\.\.(" + _NUM + r") deg", notes)
    pitch = re.search(r"pitch (" + _NUM + r")\.\.(" + _NUM + r") deg", notes)
    mouth = re.search(r"MAR max (" + _NUM + r")(?: \((\d+) frames)?", notes)
    return ClipNotes(
        frames=int(frames.group(1)) if frames else None,
        fps=float(frames.group(2)) if frames else None,
        blinks=tuple(blinks),
        yaw=(float(yaw.group(1)), float(yaw.group(2))) if yaw else None,
        pitch=(float(pitch.group(1)), float(pitch.group(2))) if pitch else None,
        mouth_max=float(mouth.group(1)) if mouth else None,
        mouth_frames=int(mouth.group(2)) if mouth and mouth.group(2) else None,
        measured="measured:" in notes,
    )


def noted_actions(n: ClipNotes, cfg: FaceConfig) -> set[str]:
    """Actions the note says the clip shows (turns within 25% of the threshold are worth a look)."""
    acts: set[str] = set()
    if any(not long for _a, _b, long in n.blinks):
        acts.add("blink")
    if n.yaw is not None:
        if n.yaw[1] >= 0.75 * cfg.turn_yaw_deg:
            acts.add("turn_left")
        if -n.yaw[0] >= 0.75 * cfg.turn_yaw_deg:
            acts.add("turn_right")
    if (n.mouth_frames or 0) > 0 or (n.mouth_max or 0.0) >= cfg.mouth_open_mar:
        acts.add("open_mouth")
    return acts


@dataclass(frozen=True)
class FrameSignal:
    """The engine's reading of one clip frame (None fields: no face found)."""

    yaw: float | None
    pitch: float | None
    mouth: float | None


@dataclass
class ClipTable:
    """One clip's segments: action -> (first frame, stop frame, step), native frame numbers."""

    file: str
    identity: str
    digest: str  # sha256 of the file's bytes: the order of clips never depends on their names
    fps: float
    n_frames: int
    actions: dict[str, Cut] = field(default_factory=dict)
    lead_in: tuple[int, int, int] | None = None  # looking ahead, nothing happening
    still: tuple[int, int, int] | None = None  # frontal frames for an enrolment template
    problems: list[str] = field(default_factory=list)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def scan_clip(engine, path: Path) -> list[FrameSignal]:
    """Yaw, pitch and mouth opening of every frame (no eyelids: blinks come from the notes)."""
    out: list[FrameSignal] = []
    for _i, _t, frame in video_frames(path):
        try:
            o = engine.analyze(frame, antispoof=False, stream=True, eyes="none")
            out.append(FrameSignal(o.yaw, o.pitch, o.mouth_open))
        except FaceError:
            out.append(FrameSignal(None, None, None))
    return out


def _runs(mask: Iterable[bool]) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    runs, start = [], None
    for i, m in enumerate([*mask, False]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            runs.append((start, i))
            start = None
    return runs


class Cut(NamedTuple):
    """Frames [start, stop) by step; ``also``: other actions these frames would count as (a
    session never asks for one of them later: the tracker would call it a wrong order)."""

    start: int
    stop: int
    step: int
    also: frozenset[str] = frozenset()


class _Locator:
    """Finds segments in one clip's signals, with the engine's own thresholds plus margins."""

    def __init__(self, sig: list[FrameSignal], cfg: FaceConfig, step: int) -> None:
        self.cfg, self.step, self.n = cfg, step, len(sig)
        nan = float("nan")
        self.yaw = np.array([nan if s.yaw is None else s.yaw for s in sig])
        self.mouth = np.array([nan if s.mouth is None else s.mouth for s in sig])
        self.face = np.isfinite(self.yaw)

    def cut(self, a: int, b: int, step: int, action: str) -> Cut | None:
        """The segment if every frame has a face, with the other actions it might fire."""
        a, b = max(a, 0), min(b, self.n)
        if b - a < 2 * step or not self.face[a:b].all():
            return None
        cfg, yaw, mouth = self.cfg, self.yaw[a:b], self.mouth[a:b]
        also = set()
        if yaw.max() >= cfg.turn_yaw_deg - 1.5:
            also.add("turn_left")
        if -yaw.min() >= cfg.turn_yaw_deg - 1.5:
            also.add("turn_right")
        if mouth.max() >= cfg.mouth_open_mar - 0.02:
            also.add("open_mouth")
        also.discard(action)
        return Cut(a, b, step, frozenset(also))

    def turn(self, action: str) -> Cut | None:
        cfg, sign = self.cfg, TURN_SIGN[action]
        signed = sign * np.nan_to_num(self.yaw)
        runs = [r for r in _runs(signed >= cfg.turn_yaw_deg + 2) if r[1] - r[0] >= 2 * self.step]
        frontal = self.face & (signed < 6)
        cuts = []
        for s, e in runs:
            before = [i for i in range(max(0, s - 30), s) if frontal[i]]
            after = [i for i in range(e, min(self.n, e + 30)) if frontal[i]]
            a = before[-1] - 2 * self.step if before else s - 3 * self.step
            b = after[0] + 1 if after else e + 3 * self.step
            if (c := self.cut(a, b, self.step, action)) is not None:
                cuts.append((len(c.also), -float(signed[s:e].max()), c))
        return min(cuts, key=lambda x: x[:2])[2] if cuts else None

    def mouth_open(self) -> Cut | None:
        cfg = self.cfg
        runs = [r for r in _runs(np.nan_to_num(self.mouth) >= cfg.mouth_open_mar + 0.01) if r[1] - r[0] >= 3]
        cuts = []
        for s, e in runs:
            step = 1 if e - s < 2 * self.step + 1 else self.step
            if (c := self.cut(s - 6 * step, e + 4 * step, step, "open_mouth")) is not None:
                cuts.append((len(c.also), -(e - s), s, c))
        return min(cuts, key=lambda x: x[:3])[3] if cuts else None

    def blink(self, blinks: tuple[tuple[int, int, bool], ...]) -> Cut | None:
        cuts = []
        for first, last, long in blinks:
            if long or last + 2 * self.step > self.n:
                continue
            around = self.yaw[max(0, first - 1): last + 2]
            if not np.isfinite(around).all() or np.abs(around).max() >= 15:
                continue  # the detector does not count a blink while the head is turned
            # >= 3 open-eye samples before the blink (the detector's baseline), reopened after it
            for tail in (6, 4, 2):
                if (c := self.cut(first - 5 * self.step, last + tail * self.step, self.step, "blink")) is not None:
                    cuts.append((len(c.also), first, c))
                    break
        return min(cuts, key=lambda x: x[:2])[2] if cuts else None

    def frontal(self, length: int) -> tuple[int, int] | None:
        """The longest quiet frontal stretch (at least ``length`` frames)."""
        ok = self.face & (np.abs(np.nan_to_num(self.yaw, nan=99)) < 6) & (np.nan_to_num(self.mouth, nan=9) < 0.25)
        runs = [r for r in _runs(ok) if r[1] - r[0] >= length]
        return max(runs, key=lambda r: (r[1] - r[0], -r[0])) if runs else None


def build_clip_table(engine, data: Path, item: Item, signals: list[FrameSignal] | None = None) -> ClipTable:
    """Locate each action the note shows; everything missing or odd goes to ``problems``."""
    cfg: FaceConfig = engine.config
    path = data / item.file
    notes = parse_notes(item.notes)
    sig = signals if signals is not None else scan_clip(engine, path)
    fps = notes.fps or 25.0
    table = ClipTable(item.file, item.identity, file_digest(path), fps, len(sig))
    if not sig:
        table.problems.append("no frames could be read")
        return table
    if not notes.measured:
        table.problems.append("note has no measured actions: used only as a clip without actions")
    step = max(1, round(fps / 12.5))  # 12.5-15 frames a second: what a phone sends
    loc = _Locator(sig, cfg, step)
    blinks = tuple(bl for bl in notes.blinks if not bl[2] and bl[1] < len(sig))
    wanted = noted_actions(notes, cfg)
    for action in sorted(wanted):
        seg = (loc.blink(blinks) if action == "blink" else loc.mouth_open() if action == "open_mouth"
               else loc.turn(action))
        if seg is None:
            table.problems.append(f"{action}: in the note, not found by the engine (no segment)")
        else:
            table.actions[action] = seg
    if (quiet := loc.frontal(12)) is not None:
        s, e = quiet
        table.lead_in = (s, s + 12, step)
        table.still = (s, e, max(1, (e - s) // 4))
    return table


def build_frame_table(engine, data: Path, items: list[Item]) -> list[ClipTable]:
    """Every readable video of the folder, in the order of their contents' digests."""
    tables = [build_clip_table(engine, data, it) for it in items if it.kind == "video" and (data / it.file).is_file()]
    return sorted(tables, key=lambda t: t.digest)
