"""FaceEngine: the one object a worker loads; everything per frame goes through ``analyze``.

Load once per worker (sessions are reused; thread counts explicit).  ``analyze`` is
synchronous CPU work: call it from a thread pool, never on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from . import models as M
from .antispoof import AntiSpoof
from .config import FaceConfig
from .detect import Detection, ScrfdDetector, YuNetDetector
from .embed import ArcFace, DlibResNet, MobileFaceNet, l2n
from .errors import ModelError, MultipleFacesError, NoFaceError, TemplateError
from .image import as_bgr
from .landmarks import Landmarker
from .matching import FaceTemplate, MatchResult, fused_score, verify
from .planarity import face_patch
from .quality import Guidance, Quality, assess

log = logging.getLogger(__name__)

Frame = bytes | bytearray | memoryview | np.ndarray


@dataclass
class FaceObservation:
    """What one frame tells about the one face in it (image coordinates, unmirrored frame)."""

    box: tuple[float, float, float, float]  # x, y, w, h
    kps: np.ndarray  # (5, 2): right eye, left eye, nose, right/left mouth corner (subject's)
    det_score: float
    quality: Quality
    frame_size: tuple[int, int]  # (w, h)
    landmarks: np.ndarray | None = None  # (468, 3)
    eye_open: tuple[float, float] | None = None  # eyelid gap / eye width (right, left eye)
    mouth_open: float | None = None  # inner-lip gap / mouth width
    yaw: float | None = None  # degrees, + = subject turned to their own left
    pitch: float | None = None  # degrees, + = looking down
    roll: float | None = None
    antispoof: float | None = None  # P(real), mean of both MiniFASNets
    embedding: np.ndarray | None = None  # L2-normalised
    embed_model: str | None = None
    aligned: np.ndarray | None = field(default=None, repr=False)  # 112x112 crop, to embed later
    dlib_embedding: np.ndarray | None = None
    spoof_crops: tuple[np.ndarray, ...] | None = field(default=None, repr=False)  # to score anti-spoof later
    patch: np.ndarray | None = field(default=None, repr=False)  # grey face patch (planarity.PATCH), live frames
    patch_map: np.ndarray | None = field(default=None, repr=False)  # 2x3 map image -> patch

    @property
    def eye_openness(self) -> float | None:
        if self.eye_open is None:
            return None
        return float(np.nanmean(self.eye_open)) if np.isfinite(self.eye_open).any() else None

    @property
    def guidance(self) -> tuple[Guidance, ...]:
        return self.quality.guidance


class FaceEngine:
    def __init__(self, config: FaceConfig | None = None) -> None:
        self.config = cfg = config or FaceConfig()
        self.bundle = M.ModelBundle(cfg.resolved_model_dir(), threads=cfg.ort_threads, verify=cfg.verify_models)
        pack = M.find_insightface_pack(self.bundle.model_dir) if cfg.embed_model in ("auto", "arcface") else None
        if cfg.embed_model == "arcface" and pack is None:
            raise ModelError(f"embed_model=arcface but no insightface pack in {self.bundle.model_dir}")
        if pack:
            det_path, rec_path = (p.relative_to(self.bundle.model_dir).as_posix() for p in pack)
            log.warning("face engine: using insightface pack %s + %s (licence is the operator's)", det_path, rec_path)
            self.detector = ScrfdDetector(str(self.bundle.path(det_path)), self.bundle.session(det_path),
                                          cfg.det_score_threshold, cfg.det_nms_iou)
            self.embedder = ArcFace(str(self.bundle.path(rec_path)), self.bundle.session(rec_path),
                                    self.bundle.version(rec_path))
        elif cfg.embed_model in ("auto", "mobilefacenet"):
            self.detector = YuNetDetector(self.bundle.session(M.YUNET), cfg.det_score_threshold, cfg.det_nms_iou)
            self.embedder = MobileFaceNet(self.bundle.session(M.MOBILEFACENET), self.bundle.version(M.MOBILEFACENET))
        else:
            raise ModelError(f"unknown embed_model {cfg.embed_model!r}")
        self.landmarker = Landmarker(self.bundle.session(M.FACEMESH), self.bundle.session(M.IRIS))
        self.antispoof = AntiSpoof(self.bundle.session(M.FAS_V2), self.bundle.session(M.FAS_V1SE))
        self.dlib: DlibResNet | None = None
        if cfg.dlib_second_opinion:
            self.dlib = DlibResNet(self.bundle.session(M.DLIB), self.bundle.load_array(M.DLIB_TEMPLATE), self.bundle.version(M.DLIB))

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # --- per frame ------------------------------------------------------------------------

    def detect(self, img: np.ndarray, *, stream: bool = False, single: bool = True) -> Detection:
        """The single face of the frame; typed errors for none or several (``single=False``:
        the largest face, for press photos in evaluation sets)."""
        cfg = self.config
        max_side = cfg.stream_det_max_side if stream else cfg.det_max_side
        dets = self.detector.detect(img, max_side)
        if not dets:
            # tight crops (face fills the picture) are found once given some margin
            h, w = img.shape[:2]
            p = max(h, w) // 4
            padded = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(127, 127, 127))
            dets = [replace(d, box=(d.box[0] - p, d.box[1] - p, d.box[2], d.box[3]), kps=d.kps - p)
                    for d in self.detector.detect(padded, max_side)]
        if not dets:
            raise NoFaceError("no face found")
        big = [d for d in dets if d.width >= cfg.second_face_ratio * dets[0].width]
        if single and len(big) > 1:
            raise MultipleFacesError(f"{len(big)} faces found")
        return dets[0]

    def analyze(self, frame: Frame, *, embed: bool = False, landmarks: bool = True,
                antispoof: bool = True, stream: bool = False, single: bool = True, eyes: str = "both") -> FaceObservation:
        """Detect, align, assess quality, and (optionally) landmarks, anti-spoof, embedding.

        ``stream=True`` detects at the smaller live-frame size; ``eyes``: both | right | left | none. Raises a ``FaceError``
        subclass for bad input, no face or several faces; quality problems are guidance.
        """
        img = as_bgr(frame, self.config)
        det = self.detect(img, stream=stream, single=single)
        aligned = self.embedder.crop(img, det.kps)
        obs_kw: dict = {}
        yaw = pitch = float("nan")
        if landmarks:
            mesh = self.landmarker.run(img, det.box, det.kps, eyes=eyes)
            yaw, pitch = mesh.yaw, mesh.pitch
            patch, patch_map = face_patch(img, det.box)  # texture points for the planarity probe
            obs_kw.update(landmarks=mesh.points, eye_open=mesh.eye_open, mouth_open=mesh.mouth_open,
                          yaw=mesh.yaw, pitch=mesh.pitch, roll=mesh.roll, patch=patch, patch_map=patch_map)
        q = assess(aligned if aligned.shape[0] == 112 else cv2.resize(aligned, (112, 112)),
                   det.width, img.shape[1], yaw, pitch, self.config)
        obs = FaceObservation(det.box, det.kps, det.score, q, (img.shape[1], img.shape[0]), aligned=aligned,
                              spoof_crops=self.antispoof.crops(img, det.box), **obs_kw)
        if antispoof:
            obs.antispoof = self.antispoof.score_crops(obs.spoof_crops)
        if embed:
            self.embed([obs])
            if self.dlib is not None:
                obs.dlib_embedding = self.dlib.embed_crops([self.dlib.crop(img, det.kps)])[0]
        return obs

    def embed(self, observations: Sequence[FaceObservation]) -> np.ndarray:
        """Embed observations that lack an embedding (in pairs: MobileFaceNet's fixed batch)."""
        todo = [o for o in observations if o.embedding is None]
        if todo:
            if any(o.aligned is None for o in todo):
                raise ValueError("observation has no aligned crop to embed")
            embs = self.embedder.embed_crops([o.aligned for o in todo])
            for o, e in zip(todo, embs, strict=True):
                o.embedding = e
                o.embed_model = self.embedder.model_id
        return np.stack([o.embedding for o in observations]) if observations else np.zeros((0, 0), np.float32)

    # --- matching -------------------------------------------------------------------------

    def enroll(self, frames: Iterable[Frame | FaceObservation], *, max_frames: int | None = None) -> FaceTemplate:
        """Template from the best frames given (one is enough; 3-5 varied ones are better)."""
        obs = [f if isinstance(f, FaceObservation) else self.analyze(f, embed=self.dlib is not None, antispoof=False)
               for f in frames]
        if not obs:
            raise NoFaceError("no frames to enroll")
        obs.sort(key=lambda o: -o.quality.score)
        obs = obs[: max_frames or self.config.enroll_max_frames]
        emb = self.embed(obs)
        extra = {}
        if self.dlib is not None and all(o.dlib_embedding is not None for o in obs):
            extra[self.dlib.model_id] = np.stack([o.dlib_embedding for o in obs])
        return FaceTemplate(self.embedder.model_id, self.embedder.version, emb, [o.quality.score for o in obs],
                            extra=extra)

    def _probe(self, template: FaceTemplate, probes: Sequence[FaceObservation] | np.ndarray) -> np.ndarray:
        if (template.model_id, template.model_version) != (self.embedder.model_id, self.embedder.version):
            # another model (or another build of it) lives in another embedding space: re-enrol
            raise TemplateError(f"template made by {template.model_id}@{template.model_version}, engine uses "
                                f"{self.embedder.model_id}@{self.embedder.version}")
        if isinstance(probes, np.ndarray):
            return probes
        return self.embed(list(probes))

    def match(self, template: FaceTemplate, probes: Sequence[FaceObservation] | np.ndarray) -> float:
        """Fused similarity of several session frames (observations or embeddings) to a template."""
        return fused_score(template, self._probe(template, probes))

    def verify(self, template: FaceTemplate, probes: Sequence[FaceObservation] | np.ndarray, *,
               age: int | None = None) -> MatchResult:
        """Score plus accept / review / reject with the age-aware threshold (and the dlib second
        opinion when it is enabled and both the template and the probes carry it)."""
        result = verify(template, self._probe(template, probes), self.config, age)
        dl = template.extra.get("dlib_resnet128")
        if dl is not None and not isinstance(probes, np.ndarray) and all(o.dlib_embedding is not None for o in probes):
            probe = l2n(np.mean([o.dlib_embedding for o in probes], axis=0))
            result = replace(result, second_opinion=float(probe @ l2n(dl.mean(axis=0))))
        return result

    # --- liveness -------------------------------------------------------------------------

    def new_challenge(self, *, now: float | None = None, rng=None):
        from .liveness import Challenge

        return Challenge.random(self.config, now=now, rng=rng)

    def tracker(self, challenge, *, template: FaceTemplate | None = None, age: int | None = None,
                mirrored: bool = False):
        """A stateful tracker for one session (``mirrored``: the client sends selfie-mirrored frames)."""
        from .liveness import ChallengeTracker

        return ChallengeTracker(self, challenge, template=template, age=age, mirrored=mirrored)
