"""Every threshold and limit of the face engine, in one dataclass.

Values marked "from face_eval" were chosen by ``scripts/bench/face_eval.py`` on the
evaluation folder (``FACEDATA_DIR``, by default ``../shared/facedata``; see the report in the comment
next to each); the rest are limits.
The comment after each field is the proposed environment variable name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "face"  # the bundle shipped with the repository


@dataclass(frozen=True)
class FaceConfig:
    # --- models -------------------------------------------------------------------------------
    model_dir: str | None = None  # FACE_MODEL_DIR (relative paths resolve against the repo root)
    verify_models: bool = True  # FACE_VERIFY_MODELS: sha256 against MANIFEST.tsv at load
    ort_threads: int = 1  # FACE_ORT_THREADS: intra-op threads per session (1 = one core per request)
    # FACE_EMBED_MODEL: mobilefacenet | arcface (a licensed insightface pack in model_dir, listed in
    # MANIFEST.tsv) | auto (the pack if present, else MobileFaceNet).  Thresholds below are
    # MobileFaceNet's: re-run face_eval and set them when switching; templates carry the model id.
    embed_model: str = "mobilefacenet"
    dlib_second_opinion: bool = False  # FACE_DLIB_SECOND_OPINION: also embed with dlib ResNet

    # --- input limits -------------------------------------------------------------------------
    max_image_bytes: int = 6 * 1024 * 1024  # FACE_MAX_IMAGE_BYTES
    max_image_pixels: int = 4096 * 4096  # FACE_MAX_IMAGE_PIXELS (checked from the header, before decoding)
    max_image_side: int = 8192  # FACE_MAX_IMAGE_SIDE

    # --- detection ----------------------------------------------------------------------------
    det_max_side: int = 640  # FACE_DET_MAX_SIDE: longest side fed to the detector (photos)
    stream_det_max_side: int = 320  # FACE_STREAM_DET_MAX_SIDE: same for live frames (faces are big)
    det_score_threshold: float = 0.6  # FACE_DET_SCORE
    det_nms_iou: float = 0.3  # FACE_DET_NMS
    second_face_ratio: float = 0.45  # FACE_SECOND_FACE_RATIO: another face this big (x largest width) = several faces

    # --- quality guidance ---------------------------------------------------------------------
    min_face_px: int = 80  # FACE_MIN_FACE_PX: box width below this -> 请靠近一点
    max_face_ratio: float = 0.95  # FACE_MAX_FACE_RATIO: box wider than this x frame -> 请离远一点
    min_brightness: float = 50.0  # FACE_MIN_BRIGHTNESS: mean grey of the aligned face -> 光线太暗
    max_brightness: float = 225.0  # FACE_MAX_BRIGHTNESS -> 光线太亮
    min_sharpness: float = 40.0  # FACE_MIN_SHARPNESS: Laplacian variance of the aligned face -> 请保持手机稳定
    max_quality_yaw: float = 25.0  # FACE_MAX_QUALITY_YAW: degrees; beyond -> 请正对屏幕
    max_quality_pitch: float = 25.0  # FACE_MAX_QUALITY_PITCH

    # --- matching (MobileFaceNet cosine; from face_eval) --------------------------------------
    # face_eval on facedata (34,980 pairs), thresholds cross-validated over 5 identity-disjoint folds
    # (picked for FAR 0.1% on four folds, measured on the fifth): accept 0.514 (0.506-0.520), 80+ accept
    # 0.557 (0.522-0.565), out-of-fold FAR 0.07% / FRR 3.96% pooled, FAR80 0.42% / FRR80 4.35% (only 1,202
    # impostor pairs of two people 80+: one false accept moves FAR80 by 0.08%).  We keep the stricter
    # end of each spread.  Review band: its lower edge 0.379 (0.336-0.477) by cross-validation (1% of the
    # training genuine pairs below it); at 0.38 no elder genuine pair is refused outright, 1.2% (65+) /
    # 4.3% (80+) go to a person (~4 / ~13 sessions a month for 300 elders) and 1.4% of impostor pairs do.
    match_threshold: float = 0.52  # FACE_MATCH_THRESHOLD: accept at/above (target FAR 0.1%)
    match_threshold_elder: float = 0.56  # FACE_MATCH_THRESHOLD_80PLUS: stricter accept for residents 80+
    elder_age: int = 80  # FACE_ELDER_AGE
    match_review_threshold: float = 0.38  # FACE_MATCH_REVIEW_THRESHOLD: [review, accept) -> human review
    identity_consistency_threshold: float = 0.30  # FACE_IDENTITY_CONSISTENCY: lowest pairwise cosine among the session frames embedded
    enroll_max_frames: int = 5  # FACE_ENROLL_MAX_FRAMES

    # --- anti-spoof (MiniFASNet V2 + V1SE mean of P(real)) ------------------------------------
    # face_eval, single images: attacks max 0.229 (23 prints, 3 screens), live captures min 0.738; the
    # cross-validated threshold (halfway between the training folds' attack max and live min) is 0.468
    # (0.408-0.483): every fold 0 attacks accepted, 0 live refused.  Live video frames dip to ~0.55 (d11,
    # d19), so reject below 0.5 and send [0.5, 0.675) to review.  On held-out data 4 of 27 attacks scored
    # above 0.5: the planarity of the head turn (below) is the second, independent signal.
    antispoof_threshold: float = 0.50  # FACE_ANTISPOOF_THRESHOLD: session score below -> attack
    antispoof_review_threshold: float = 0.675  # FACE_ANTISPOOF_REVIEW: session score in [thr, review) -> review
    antispoof_session_frames: int = 3  # FACE_ANTISPOOF_FRAMES: frames scored per session

    # --- liveness challenge -------------------------------------------------------------------
    challenge_min_actions: int = 2  # FACE_CHALLENGE_MIN_ACTIONS
    challenge_max_actions: int = 3  # FACE_CHALLENGE_MAX_ACTIONS
    challenge_ttl_s: float = 45.0  # FACE_CHALLENGE_TTL_S: essential limit; generous for elders
    blink_close_ratio: float = 0.55  # FACE_BLINK_CLOSE_RATIO: eyelid gap below this x running median = closed
    blink_open_ratio: float = 0.7  # FACE_BLINK_OPEN_RATIO: back above this x median = reopened (mean of both eyes)
    turn_yaw_deg: float = 12.0  # FACE_TURN_YAW_DEG: |yaw| (absolute; frontal reads within ~5) held 2 frames = a turn
    nod_pitch_deg: float = 8.0  # FACE_NOD_PITCH_DEG: pitch change down from baseline for a nod
    mouth_open_mar: float = 0.35  # FACE_MOUTH_OPEN_MAR: inner-lip gap / mouth width
    mouth_open_frames: int = 2  # FACE_MOUTH_OPEN_FRAMES: consecutive frames above it
    min_frame_interval_s: float = 0.015  # FACE_MIN_FRAME_INTERVAL_S: faster than ~66 fps is not a camera
    max_frame_gap_s: float = 2.0  # FACE_MAX_FRAME_GAP_S: longer gap = a cut, not one continuous session
    min_session_frames: int = 6  # FACE_MIN_SESSION_FRAMES
    max_static_fraction: float = 0.9  # FACE_MAX_STATIC_FRACTION: share of near-identical consecutive frames
    session_embed_frames: int = 2  # FACE_SESSION_EMBED_FRAMES: best frames embedded for the match

    # --- a second presentation-attack signal: does the face turn like a flat card? ---------------
    # homography residual of tracked face points between the frontal frame and the turned ones, in
    # eye distances (planarity.py).  face_eval: 33 genuine sessions measured, 0.020-0.075 (median
    # 0.037); tilted prints and photos where it could be measured 0.006-0.013; synthetic flat cards
    # 0.003-0.006.  The threshold keeps a factor two from the lowest genuine session.
    planar_residual_threshold: float = 0.008  # FACE_PLANAR_RESIDUAL_THRESHOLD: below -> a flat picture (liveness.flat)
    planar_min_yaw_deg: float = 8.0  # FACE_PLANAR_MIN_YAW_DEG: turn from frontal before a frame is measured

    # --- failing fast, and saying why -----------------------------------------------------------
    early_spoof_frames: int = 3  # FACE_EARLY_SPOOF_FRAMES: first frames scored by MiniFASNet (every 3rd)
    early_static_frames: int = 12  # FACE_EARLY_STATIC_FRAMES: this many frames that never change -> static now
    stall_s: float = 10.0  # FACE_STALL_S: a quality problem this long with nothing done ends the session
    stall_share: float = 0.8  # FACE_STALL_SHARE: share of the window's frames that must carry the problem

    def resolved_model_dir(self) -> Path:
        """Model dir as an absolute path; relative values are relative to the repo, not the CWD."""
        if not self.model_dir:
            return DEFAULT_MODEL_DIR
        p = Path(self.model_dir)
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()

    def accept_threshold(self, age: int | None) -> float:
        """Accept threshold for this resident: stricter for 80+ (elderly impostor tails are longer)."""
        if age is not None and age >= self.elder_age:
            return max(self.match_threshold, self.match_threshold_elder)
        return self.match_threshold
