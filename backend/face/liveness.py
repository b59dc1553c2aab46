"""Liveness: a random ordered challenge, tracked frame by frame, ending in pass / review / fail.

Liveness is the sum of: the random actions performed in order before the deadline; passive
anti-spoof on several frames; the same identity on every frame that proves something; and
frames arriving with plausible timing.  A recorded video cannot know the random order; a
photo cannot blink; a still frame repeated is not a camera.

Direction convention (the classic mirror trap): ``turn_left`` means the resident turns the
head to *their own* left.  Frames must be the camera's unmirrored frames (getUserMedia and
wx.createCameraContext deliver them unmirrored; the selfie preview is mirrored only by CSS).
In an unmirrored frame the nose then moves towards the image's right edge and the engine's
yaw is positive.  If a client ever sends mirrored frames, set ``mirrored=True`` on the tracker.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .config import FaceConfig
from .errors import FaceError, MultipleFacesError
from .matching import FaceTemplate, MatchResult
from .planarity import PlanarityProbe

if TYPE_CHECKING:
    from .engine import FaceEngine, FaceObservation, Frame

ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth", "nod")
PROMPTS = {
    "blink": "请眨眨眼",
    "turn_left": "请慢慢向左转头",
    "turn_right": "请慢慢向右转头",
    "open_mouth": "请张张嘴",
    "nod": "请慢慢点头",
}
# what happened, in words shown and spoken on the challenge screen while the result is prepared;
# never an instruction to press something (the result screen has the buttons and the advice)
MESSAGES = {
    "liveness.done": "动作完成，请稍候",
    "liveness.timeout": "时间到了，动作没有做完",
    "liveness.incomplete": "动作没有做完",
    "liveness.wrong_order": "动作顺序不对",
    "liveness.identity_changed": "中途换了人",
    "liveness.spoof": "看起来像是照片或屏幕，不是本人",
    "liveness.flat": "转头时画面像一张平的照片或屏幕",
    "liveness.static": "画面一直不动，像是照片",
    "liveness.timing": "画面时间不连续，网络可能不好",
    "liveness.too_few_frames": "收到的画面太少",
    "liveness.no_face": "一直没有看到脸",
    "liveness.too_dark": "光线太暗，看不清脸",
    "liveness.too_bright": "光线太亮，看不清脸",
    "liveness.unsteady": "画面一直在晃，看不清脸",
    "liveness.too_far": "离得太远，看不清脸",
    "liveness.too_close": "离得太近，看不全脸",
    "liveness.match_reject": "人脸与登记信息不一致",
    "liveness.match_review": "需要工作人员复核",
    "liveness.antispoof_review": "需要工作人员复核",
    "liveness.multiple_faces": "需要工作人员复核",
}
# a quality problem that lasts: the failure it becomes (what is missing, said plainly)
STALLS = {
    "face.no_face": "liveness.no_face",
    "face.too_dark": "liveness.too_dark",
    "face.too_bright": "liveness.too_bright",
    "face.blurry": "liveness.unsteady",
    "face.too_small": "liveness.too_far",
    "face.too_close": "liveness.too_close",
}


@dataclass(frozen=True)
class Challenge:
    """Ordered actions, a nonce binding the session, and a deadline (same clock as frame times)."""

    actions: tuple[str, ...]
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    issued_at: float = field(default_factory=time.time)
    ttl_s: float = 45.0

    def __post_init__(self) -> None:
        bad = [a for a in self.actions if a not in ACTIONS]
        if bad or not self.actions:
            raise ValueError(f"unknown or no actions: {bad or self.actions}")

    @property
    def deadline(self) -> float:
        return self.issued_at + self.ttl_s

    @classmethod
    def random(cls, cfg: FaceConfig | None = None, *, now: float | None = None, rng: Any = None,
               n: int | None = None) -> Challenge:
        """2-3 distinct actions in random order; never left and right back to back (too easy to
        sweep through with one head shake)."""
        cfg = cfg or FaceConfig()
        rng = rng or random.SystemRandom()
        n = n or rng.randint(cfg.challenge_min_actions, cfg.challenge_max_actions)
        while True:
            acts = tuple(rng.sample(ACTIONS, n))
            if not any({a, b} == {"turn_left", "turn_right"} for a, b in zip(acts, acts[1:], strict=False)):
                break
        return cls(acts, issued_at=time.time() if now is None else now, ttl_s=cfg.challenge_ttl_s)

    def to_dict(self) -> dict[str, Any]:
        return {"actions": list(self.actions), "nonce": self.nonce, "issued_at": self.issued_at, "ttl_s": self.ttl_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Challenge:
        return cls(tuple(d["actions"]), d["nonce"], float(d["issued_at"]), float(d["ttl_s"]))

    def prompts(self) -> list[str]:
        return [PROMPTS[a] for a in self.actions]


@dataclass(frozen=True)
class Progress:
    """What to tell the resident after this frame."""

    code: str  # liveness.<action> (do this next) | liveness.done | a failure code | a face.* guidance code
    hint: str  # Chinese, to show and speak
    done: tuple[str, ...]  # actions completed so far, in order
    current: str | None  # the action being asked for
    finished: bool  # all actions done, or failed: stop sending frames
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, e.g. for the WebSocket message to the miniapp."""
        return {"code": self.code, "hint": self.hint, "done": list(self.done), "current": self.current,
                "finished": self.finished, "failed": self.failed}


@dataclass(frozen=True)
class Verdict:
    decision: str  # pass | review | fail
    reasons: tuple[str, ...]  # stable codes, empty for a clean pass
    actions_done: tuple[str, ...]
    antispoof: float | None  # session score (mean P(real) over scored frames)
    identity_min: float | None  # lowest pairwise similarity among the embedded session frames
    match: MatchResult | None
    frames: int
    duration_s: float
    planarity: float | None = None  # homography residual of the turn (x eye distance); None: not measured
    parallax: float | None = None  # nose shift per sin(yaw) during the turn (cross-check, not decided on)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the attempt record and the audit trail (no embeddings)."""
        m = self.match
        return {
            "decision": self.decision, "reasons": list(self.reasons), "hint": self.hint,
            "actions_done": list(self.actions_done), "antispoof": self.antispoof, "identity_min": self.identity_min,
            "match": None if m is None else {"score": m.score, "decision": m.decision, "threshold": m.threshold,
                                             "review_threshold": m.review_threshold},
            "frames": self.frames, "duration_s": self.duration_s, "planarity": self.planarity,
            "parallax": self.parallax,
        }

    @property
    def hint(self) -> str:
        if self.decision == "pass":
            return "验证成功"
        return MESSAGES.get(self.reasons[0], "请重新开始") if self.reasons else "请重新开始"


@dataclass
class _Frame:
    t: float
    obs: FaceObservation
    static: bool


class _Detectors:
    """Per-action state machines over the per-frame signals; each returns True once, on completion."""

    def __init__(self, cfg: FaceConfig) -> None:
        self.cfg = cfg
        self.eye_hist: tuple[deque[float], deque[float]] = (deque(maxlen=45), deque(maxlen=45))
        self.pitch_hist: deque[float] = deque(maxlen=90)
        self.reset()

    def reset(self) -> None:
        self.eye_closed = False
        self.turn_run = {"turn_left": 0, "turn_right": 0}
        self.mouth_run = 0
        self.nod_down = False

    def update(self, obs: FaceObservation, yaw: float) -> set[str]:
        cfg = self.cfg
        fired: set[str] = set()
        if obs.yaw is None or obs.pitch is None or not np.isfinite(yaw):
            return fired
        # yaw is absolute (a frontal face measures within about +-5 degrees; a session that starts
        # turned must not make the turn its baseline); pitch is relative: phones are held low
        base_yaw = 0.0
        base_pitch = float(np.median(self.pitch_hist)) if self.pitch_hist else obs.pitch
        dyaw, dpitch = yaw - base_yaw, obs.pitch - base_pitch
        # each eye against its own running median (the tracker may measure only one eye a frame)
        eyes = [(e, h) for e, h in zip(obs.eye_open or (), self.eye_hist, strict=False) if np.isfinite(e)]
        if abs(dyaw) < 20 and eyes:
            ratios = [e / (float(np.median(h)) + 1e-6) for e, h in eyes if len(h) >= 3]
            if ratios:
                r = float(np.mean(ratios))
                if r < cfg.blink_close_ratio:
                    self.eye_closed = True
                elif self.eye_closed and r > cfg.blink_open_ratio:
                    self.eye_closed = False
                    fired.add("blink")
            if not self.eye_closed:
                for e, h in eyes:
                    h.append(e)
        for act, sign in (("turn_left", 1.0), ("turn_right", -1.0)):
            self.turn_run[act] = self.turn_run[act] + 1 if sign * dyaw >= cfg.turn_yaw_deg else 0
            if self.turn_run[act] == 2:
                fired.add(act)
        self.mouth_run = self.mouth_run + 1 if (obs.mouth_open or 0.0) >= cfg.mouth_open_mar else 0
        if self.mouth_run == cfg.mouth_open_frames:
            fired.add("open_mouth")
        if dpitch >= cfg.nod_pitch_deg and abs(dyaw) < 15:
            self.nod_down = True
        elif self.nod_down and dpitch < cfg.nod_pitch_deg / 2:
            self.nod_down = False
            fired.add("nod")
        if abs(dpitch) < cfg.nod_pitch_deg:
            self.pitch_hist.append(obs.pitch)
        return fired


class ChallengeTracker:
    """Feed frames in arrival order; read ``progress`` after each; call ``verdict`` at the end.

    State is in memory: the service keeps the tracker on the worker that owns the WebSocket,
    and stores the ``Challenge`` (to_dict) in Redis.
    """

    def __init__(self, engine: FaceEngine, challenge: Challenge, *, template: FaceTemplate | None = None,
                 age: int | None = None, mirrored: bool = False) -> None:
        self.engine = engine
        self.cfg = engine.config
        self.challenge = challenge
        self.template = template
        self.age = age
        self.mirrored = mirrored
        self.frames: list[_Frame] = []
        self.done: list[str] = []
        self.evidence: list[int] = []  # index in self.frames of each action's completion
        self.failures: list[str] = []
        self.flags: set[str] = set()
        self.late_frames = 0
        self.multi_face_frames = 0
        self.cuts: list[int] = []  # frame indices where the face jumped between frames
        self._det = _Detectors(self.cfg)
        self.planarity = PlanarityProbe(min_dyaw=self.cfg.planar_min_yaw_deg)
        self.early_spoof: list[float] = []  # MiniFASNet on the first frames: a clear attack ends at once
        self._problems: deque[tuple[float, str | None]] = deque(maxlen=256)  # (t, guidance code) per frame
        self._progress_t: float | None = None  # last time something moved forward (start, an action done)
        self._last_t: float | None = None
        self._prev_grey: np.ndarray | None = None
        self._verdict: Verdict | None = None

    # --- feeding --------------------------------------------------------------------------

    @property
    def current(self) -> str | None:
        return self.challenge.actions[len(self.done)] if len(self.done) < len(self.challenge.actions) else None

    @property
    def finished(self) -> bool:
        return self.current is None or bool(self.failures)

    def feed(self, frame: Frame, t: float | None = None) -> Progress:
        """Analyse one frame (t = arrival time, same clock as the challenge) and advance."""
        t = time.time() if t is None else t
        if (p := self._check_time(t)) is not None:
            return p
        try:
            # eyelids (the iris model) only while a blink is asked for (blinks elsewhere are ignored),
            # both eyes until each has a short baseline, then one eye a frame, alternating: a
            # deliberate blink closes both eyes over several frames
            eyes = "none"
            if self.current == "blink":
                warm = min(len(h) for h in self._det.eye_hist) >= 3
                eyes = ("right", "left")[len(self.frames) % 2] if warm else "both"
            obs = self.engine.analyze(frame, antispoof=False, stream=True, eyes=eyes)
        except MultipleFacesError as e:
            self.multi_face_frames += 1
            return self._progress(e.code, e.hint)
        except FaceError as e:
            self.planarity.reset_track()
            self._note_problem(t, e.code)
            return self._progress(e.code, e.hint)
        return self._advance(obs, t)

    def feed_observation(self, obs: FaceObservation, t: float) -> Progress:
        """Advance with an observation already made by ``engine.analyze`` (landmarks required)."""
        if (p := self._check_time(t)) is not None:
            return p
        return self._advance(obs, t)

    def _check_time(self, t: float) -> Progress | None:
        if self.finished:
            return self._progress()
        ch, cfg = self.challenge, self.cfg
        if t > ch.deadline:
            self.late_frames += 1
            self._fail("liveness.timeout")
            return self._progress()
        if t < ch.issued_at:
            self._fail("liveness.timing")  # a frame from before the challenge existed
            return self._progress()
        if self._last_t is not None:
            dt = t - self._last_t
            if dt < cfg.min_frame_interval_s:
                self._fail("liveness.timing")
                return self._progress()
            if dt > cfg.max_frame_gap_s:
                self._fail("liveness.timing")
                return self._progress()
        self._last_t = t
        if self._progress_t is None:
            self._progress_t = t
        return None

    def _note_problem(self, t: float, code: str | None) -> None:
        """Remember this frame's quality problem; one that lasts ``stall_s`` with nothing done ends
        the session before the deadline, saying what is missing."""
        self._problems.append((t, code))
        cfg = self.cfg
        if self.finished or self._progress_t is None or t - self._progress_t < cfg.stall_s:
            return
        window = [c for ts, c in self._problems if ts >= t - cfg.stall_s]
        named = [STALLS[c] for c in window if c in STALLS]
        if len(window) >= 5 and len(named) >= cfg.stall_share * len(window):
            self._fail(max(set(named), key=named.count))

    def _advance(self, obs: FaceObservation, t: float) -> Progress:
        if obs.landmarks is None:
            raise ValueError("tracker needs observations with landmarks")
        self._record(obs, t)
        yaw = -(obs.yaw or 0.0) if self.mirrored else (obs.yaw if obs.yaw is not None else float("nan"))
        self._step_actions(obs, yaw, t)
        self._early_checks(obs)
        # size, light and blur guidance comes before the prompt; pose guidance would contradict it
        guidance = [g for g in obs.quality.guidance if g.code != "face.not_frontal"]
        self._note_problem(t, guidance[0].code if guidance else None)
        if not self.finished and guidance:
            return self._progress(guidance[0].code, guidance[0].hint)
        return self._progress()

    def _record(self, obs: FaceObservation, t: float) -> None:
        """Keep the frame, noting whether it repeats the last one and whether the face jumped (a cut)."""
        grey = cv2.cvtColor(obs.aligned, cv2.COLOR_BGR2GRAY).astype(np.int16) if obs.aligned is not None else None
        static = bool(grey is not None and self._prev_grey is not None
                      and float(np.abs(grey - self._prev_grey).mean()) < 0.8)
        self._prev_grey = grey
        if self.frames:
            prev = self.frames[-1].obs
            (px, py, pw, ph), (x, y, w, h) = prev.box, obs.box
            jump = np.hypot((x + w / 2) - (px + pw / 2), (y + h / 2) - (py + ph / 2)) / max(pw, 1)
            if jump > 0.5 or not 0.7 < w / max(pw, 1) < 1.4:
                self.cuts.append(len(self.frames))
                self.planarity.reset_track()
        self.planarity.update(obs.patch, obs.patch_map, obs.yaw, obs.kps, obs.landmarks)
        obs.patch = obs.patch_map = None  # the probe keeps what it needs
        self.frames.append(_Frame(t, obs, static))
        if len(self.frames) % 16 == 0:
            self._prune()

    def _step_actions(self, obs: FaceObservation, yaw: float, t: float) -> None:
        """Advance the challenge: the asked action done, or a later one done first (wrong order)."""
        fired = self._det.update(obs, yaw)
        cur = self.current
        if cur in fired:
            self.done.append(cur)
            self.evidence.append(len(self.frames) - 1)
            self._det.reset()
            self._progress_t = t
        else:
            later = set(self.challenge.actions[len(self.done) + 1 :]) - {"blink"}  # blinks are involuntary
            if fired & later:
                self._fail("liveness.wrong_order")

    def _early_checks(self, obs: FaceObservation) -> None:
        """A clear attack ends the session within seconds instead of at the deadline: MiniFASNet on
        the first few frames, frames that never change, a face that turns like a flat card."""
        cfg, n = self.cfg, len(self.frames)
        if len(self.early_spoof) < cfg.early_spoof_frames and n % 3 == 1 and obs.spoof_crops is not None:
            obs.antispoof = self._antispoof(obs)
            if obs.antispoof is not None:
                self.early_spoof.append(obs.antispoof)
            if (len(self.early_spoof) == cfg.early_spoof_frames and np.mean(self.early_spoof) < cfg.antispoof_threshold
                    and max(self.early_spoof) < cfg.antispoof_review_threshold):
                self._fail("liveness.spoof")
        if n == cfg.early_static_frames and sum(f.static for f in self.frames[1:]) / (n - 1) > cfg.max_static_fraction:
            self._fail("liveness.static")
        r = self.planarity.residual
        if r is not None and r < cfg.planar_residual_threshold:
            self._fail("liveness.flat")

    def _prune(self, keep_best: int = 8) -> None:
        """Drop crops and mesh of frames the verdict cannot need (bounded memory per session):
        keep action evidence, both sides of cuts, the latest frames and the best frontal ones."""
        n = len(self.frames)
        keep = set(self.evidence) | {j for c in self.cuts for j in (c - 1, c)} | set(range(max(0, n - 4), n))
        frontal = [i for i, f in enumerate(self.frames) if f.obs.aligned is not None and abs(f.obs.yaw or 0) < 20]
        keep |= set(sorted(frontal, key=lambda i: -self.frames[i].obs.quality.score)[:keep_best])
        # and the best of each quarter of the session so far, so the picked frames stay spread in time
        for q in range(4):
            part = [i for i in frontal if q * n // 4 <= i < (q + 1) * n // 4]
            if part:
                keep.add(max(part, key=lambda i: self.frames[i].obs.quality.score))
        for i, f in enumerate(self.frames):
            if i not in keep and f.obs.aligned is not None:
                f.obs.aligned = f.obs.spoof_crops = f.obs.landmarks = None

    def _fail(self, code: str) -> None:
        if code not in self.failures:
            self.failures.append(code)

    def _progress(self, code: str | None = None, hint: str | None = None) -> Progress:
        done = tuple(self.done)
        if self.failures:
            c = self.failures[0]
            return Progress(c, MESSAGES[c], done, self.current, True, True)
        if self.current is None:
            return Progress("liveness.done", MESSAGES["liveness.done"], done, None, True)
        if code is None:
            code, hint = f"liveness.{self.current}", PROMPTS[self.current]
        return Progress(code, hint or "", done, self.current, False)

    # --- verdict --------------------------------------------------------------------------

    def _pick_best(self) -> list[int]:
        """Best-quality frontal frame in each of k equal time slices of the session."""
        k = self.cfg.session_embed_frames
        kept = [i for i, f in enumerate(self.frames) if f.obs.aligned is not None or f.obs.embedding is not None]
        idx = [i for i in kept if abs(self.frames[i].obs.yaw or 0) < 20 and not self.frames[i].obs.quality.guidance]
        idx = idx or kept
        if not idx:
            return []
        t0, t1 = self.frames[idx[0]].t, self.frames[idx[-1]].t
        out = []
        for s in range(k):
            lo, hi = t0 + (t1 - t0) * s / k, t0 + (t1 - t0) * (s + 1) / k
            sl = [i for i in idx if lo <= self.frames[i].t <= hi]
            if sl:
                out.append(max(sl, key=lambda i: self.frames[i].obs.quality.score))
        return sorted(set(out))

    def verdict(self, now: float | None = None) -> Verdict:
        """Final decision; call once the tracker is finished (or to give up at the deadline).

        Steps, each adding failure reasons or review reasons: the challenge completed in time;
        enough live-looking frames; the frames that prove something embedded; one identity
        throughout; passive anti-spoof fused with the planarity of the turn; the match."""
        if self._verdict is not None:
            return self._verdict
        reasons = list(self.failures) + self._completion_reasons(now) + self._stream_reasons()
        review: list[str] = []
        proof = self._proof_frames()
        identity_min = spoof = None
        match = None
        if proof:
            identity_min = self._identity_min(proof)
            if identity_min is not None and identity_min < self.cfg.identity_consistency_threshold:
                reasons.append("liveness.identity_changed")
            spoof = self._session_antispoof(proof)
            reasons_a, review_a = self._presentation_attack(spoof)
            reasons += reasons_a
            review += review_a
            if self.template is not None:
                match = self._match(proof)
                if match.decision == "reject":
                    reasons.append("liveness.match_reject")
                elif match.decision == "review":
                    review.append("liveness.match_review")
        if self.multi_face_frames:
            review.append("liveness.multiple_faces")
        decision = "fail" if reasons else "review" if review else "pass"
        n = len(self.frames)
        dur = self.frames[-1].t - self.frames[0].t if n > 1 else 0.0
        self._verdict = Verdict(decision, tuple(dict.fromkeys(reasons + review)), tuple(self.done), spoof,
                                identity_min, match, n, dur, self.planarity.residual, self.planarity.nose_parallax)
        return self._verdict

    def _completion_reasons(self, now: float | None) -> list[str]:
        """All actions done, or why not: the deadline passed, or the frames simply stopped."""
        if self.current is None or self.failures:
            return []
        last = self.frames[-1].t if self.frames else self.challenge.issued_at
        late = max(last, now if now is not None else last) > self.challenge.deadline
        return ["liveness.timeout" if late else "liveness.incomplete"]

    def _stream_reasons(self) -> list[str]:
        """Too few frames to judge, or frames that barely change (a photo or a frozen stream)."""
        cfg, n = self.cfg, len(self.frames)
        out = []
        if n < cfg.min_session_frames:
            out.append("liveness.too_few_frames")
        if n > 1 and sum(f.static for f in self.frames[1:]) / (n - 1) > cfg.max_static_fraction:
            out.append("liveness.static")
        return out

    def _proof_frames(self) -> list[int]:
        """Frames that prove something: each action's completion and both sides of any cut, plus the
        best frontal frames for the match; MobileFaceNet embeds two at a time, so pad to even."""
        cfg, n = self.cfg, len(self.frames)
        best = self._pick_best()
        proof_set = set(self.evidence) | {j for c in self.cuts for j in (c - 1, c) if 0 <= j < n}
        has_frontal = any(abs(self.frames[i].obs.yaw or 0) < 15 for i in proof_set)
        need = max(cfg.session_embed_frames - len(proof_set), 0 if has_frontal else 1)
        proof_set |= set([i for i in best if i not in proof_set][:need])
        if len(proof_set) % 2 and n > len(proof_set):
            spare = [i for i in best if i not in proof_set] or [
                i for i in sorted(range(n), key=lambda i: -self.frames[i].obs.quality.score)
                if i not in proof_set and self.frames[i].obs.aligned is not None]
            if spare:
                proof_set.add(spare[0])
        return sorted(proof_set)

    def _identity_min(self, proof: list[int]) -> float | None:
        """Lowest pairwise similarity among the proof frames (None with a single frame)."""
        emb = self.engine.embed([self.frames[i].obs for i in proof])
        if len(proof) < 2:
            return None
        return float((emb @ emb.T)[np.triu_indices(len(proof), 1)].min())

    def _session_antispoof(self, proof: list[int]) -> float | None:
        """Mean MiniFASNet P(real) over the best proof frames."""
        scored = sorted(proof, key=lambda i: -self.frames[i].obs.quality.score)[: self.cfg.antispoof_session_frames]
        scores = []
        for i in scored:
            o = self.frames[i].obs
            if o.antispoof is None:
                o.antispoof = self._antispoof(o)
            if o.antispoof is not None:
                scores.append(o.antispoof)
        return float(np.mean(scores)) if scores else None

    def _presentation_attack(self, spoof: float | None) -> tuple[list[str], list[str]]:
        """Fusion of the two independent signals: either one's clear attack rejects (a print that
        fools MiniFASNet still turns like a card); MiniFASNet's uncertain band goes to review."""
        cfg, reasons, review = self.cfg, [], []
        if spoof is not None:
            if spoof < cfg.antispoof_threshold:
                reasons.append("liveness.spoof")
            elif spoof < cfg.antispoof_review_threshold:
                review.append("liveness.antispoof_review")
        flat = self.planarity.residual
        if flat is not None and flat < cfg.planar_residual_threshold:
            reasons.append("liveness.flat")
        return reasons, review

    def _match(self, proof: list[int]) -> MatchResult:
        """The frontal proof frames fused against the template (turned evidence only if nothing else)."""
        frontal = [i for i in proof if abs(self.frames[i].obs.yaw or 0) < 15] or proof
        return self.engine.verify(self.template, np.stack([self.frames[i].obs.embedding for i in frontal]),
                                  age=self.age)

    def _antispoof(self, obs: FaceObservation) -> float | None:
        return None if obs.spoof_crops is None else self.engine.antispoof.score_crops(obs.spoof_crops)
