#!/usr/bin/env python
"""Face engine CPU cost: per stage and per frame at 640x480, and one whole liveness session.

CPU time is process time (all threads), so it is what a worker core really spends.  The
session is 2 s at 8 fps (16 JPEG frames of a real clip doing two actions), each frame
detected once at the stream size with landmarks, anti-spoof and embeddings only on the
frames the verdict needs.  Last line:
``face_speed: session_cpu_ms=… frame_ms=… embed_ms=…``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.dont_write_bytecode = True  # write nothing into the repo, not even __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.face import Challenge, FaceConfig, FaceEngine  # noqa: E402
from backend.face.dataset import default_data_dir, video_frames  # noqa: E402
from backend.face.image import as_bgr  # noqa: E402


def cpu_ms(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.process_time_ns()
        fn()
        out.append((time.process_time_ns() - t) / 1e6)
    return out


def p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95))


def to_640x480(frame: np.ndarray) -> np.ndarray:
    """Letterbox a clip frame into a 640x480 phone-camera frame."""
    h, w = frame.shape[:2]
    s = min(640 / w, 480 / h)
    r = cv2.resize(frame, (round(w * s), round(h * s)))
    out = np.zeros((480, 640, 3), np.uint8)
    y, x = (480 - r.shape[0]) // 2, (640 - r.shape[1]) // 2
    out[y : y + r.shape[0], x : x + r.shape[1]] = r
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("-n", type=int, default=40, help="repetitions per stage")
    args = ap.parse_args()
    data = (args.data or default_data_dir()).resolve()
    cfg = FaceConfig()
    engine = FaceEngine(cfg)
    clip = data / "video/lp_driving_d3.mp4"
    frames = [to_640x480(f) for _i, _t, f in video_frames(clip, 0, 354, 4)]
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in frames]
    img = frames[0]
    det = engine.detect(img, stream=True)
    obs = engine.analyze(img, stream=True)
    n = args.n
    for _ in range(3):  # warm-up: first runs allocate
        engine.analyze(jpegs[0], stream=True, embed=True)

    stages: dict[str, list[float]] = {
        "decode JPEG 640x480": cpu_ms(lambda: as_bgr(jpegs[0], cfg), n),
        f"detect YuNet @{cfg.stream_det_max_side} (stream)": cpu_ms(lambda: engine.detect(img, stream=True), n),
        f"detect YuNet @{cfg.det_max_side} (photo)": cpu_ms(lambda: engine.detect(img), n),
        "align 112 (norm_crop)": cpu_ms(lambda: engine.embedder.crop(img, det.kps), n),
        "FaceMesh + pose + mouth (no eyes)": cpu_ms(lambda: engine.landmarker.run(img, det.box, det.kps, eyes="none"), n),
        "FaceMesh + iris eyelids x1": cpu_ms(lambda: engine.landmarker.run(img, det.box, det.kps, eyes="right"), n),
        "FaceMesh + iris eyelids x2": cpu_ms(lambda: engine.landmarker.run(img, det.box, det.kps, eyes="both"), n),
        "anti-spoof crops": cpu_ms(lambda: engine.antispoof.crops(img, det.box), n),
        "anti-spoof V2+V1SE": cpu_ms(lambda: engine.antispoof.score_crops(obs.spoof_crops), n),
        "embed MobileFaceNet (batch of 2)": cpu_ms(lambda: engine.embedder.embed_crops([obs.aligned, obs.aligned]), n),
    }
    if engine.dlib is None:
        from backend.face import models as M
        from backend.face.embed import DlibResNet

        dl = DlibResNet(engine.bundle.session(M.DLIB), engine.bundle.load_array(M.DLIB_TEMPLATE), "")
    else:
        dl = engine.dlib
    stages["embed dlib ResNet (1, optional)"] = cpu_ms(lambda: dl.embed_crops([dl.crop(img, det.kps)]), n)
    frame_stream = cpu_ms(lambda: engine.analyze(jpegs[0], antispoof=False, stream=True, eyes="none"), n)
    frame_blink = cpu_ms(lambda: engine.analyze(jpegs[0], antispoof=False, stream=True, eyes="right"), n)
    frame_full = cpu_ms(lambda: engine.analyze(jpegs[0], embed=True), n)
    stages["frame: tracker path (JPEG->mesh)"] = frame_stream
    stages["frame: tracker path, blink asked (+1 eyelid)"] = frame_blink
    stages["frame: full analyze @640 (+eyes+AS+embed)"] = frame_full

    print(f"CPU ms per call at 640x480, {n} runs, onnxruntime intra-op threads={cfg.ort_threads}")
    print(f"{'stage':<46} {'median':>8} {'p95':>8}")
    for name, xs in stages.items():
        print(f"{name:<46} {statistics.median(xs):8.2f} {p95(xs):8.2f}")
    fm = statistics.median(frame_stream)
    print(f"frames/s per core (tracker path): {1000 / fm:.0f}; full analyze: {1000 / statistics.median(frame_full):.0f}")

    # --- whole sessions: 2 s at 8 fps (16 JPEG frames of the clip doing the two actions) -----------
    def session(actions: tuple[str, ...], segs: list[tuple[int, int]]) -> tuple[float, float, str, float]:
        seq = [to_640x480(f) for a, b in segs for _i, _t, f in video_frames(clip, a, b, 4)]
        jp = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes() for f in seq][:16]
        runs, wall, dec = [], [], ""
        for _ in range(5):
            t0w, t0 = time.perf_counter(), time.process_time_ns()
            tr = engine.tracker(Challenge(actions, issued_at=0.0, ttl_s=30))
            for k, jb in enumerate(jp):
                tr.feed(jb, 0.5 + k / 8)
            dec = tr.verdict().decision
            runs.append((time.process_time_ns() - t0) / 1e6)
            wall.append((time.perf_counter() - t0w) * 1000)
        return statistics.median(runs), p95(runs), dec, statistics.median(wall)

    print("\nsession (2 s at 8 fps = 16 JPEG frames at 640x480; verdict embeds the proof frames (even count), "
          "anti-spoof on up to 3): goal < 300 ms CPU")
    results = {}
    for name, actions, segs in [
        ("turn_left,open_mouth", ("turn_left", "open_mouth"), [(232, 264), (290, 322)]),
        ("blink,open_mouth (eyelids while blink asked)", ("blink", "open_mouth"), [(36, 68), (290, 322)]),
    ]:
        med, hi, dec, wall = session(actions, segs)
        results[name] = med
        print(f"  {name:<46} -> {dec:<5} CPU ms median {med:6.1f} p95 {hi:6.1f}; wall {wall:6.1f}")
    session_ms = max(results.values())
    embed_ms = statistics.median(stages["embed MobileFaceNet (batch of 2)"])
    print(f"face_speed: session_cpu_ms={session_ms:.1f} frame_ms={fm:.2f} embed_ms={embed_ms:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
