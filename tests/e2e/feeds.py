"""Camera feeds for Chromium's fake capture device (`--use-file-for-fake-video-capture=FILE.y4m`).

Chromium plays the file from its first frame when the page opens the camera, and loops it.
The files are written here with OpenCV (already a backend dependency), raw YUV4MPEG2 4:2:0,
into a temporary folder (about 0.5 MB a frame at 640x480: never committed).

The face feed is built from the real clip `lp_driving_d3` (tests/support/clips.py has the
frame ranges): a long look-ahead first (the session starts during it), then a blink (at half
speed, so a phone sending ~9 frames a second sees it over several frames), a pause, a turn
of the head to the left and back. The e2e server asks for exactly `blink` and `turn_left` in a
random order: for blink → turn the first loop does it; for turn → blink the early blink is
ignored (the tracker treats blinks as involuntary) and the next loop's blink completes it.
(The clip's mouth opening is too slight to survive a phone's 480 px JPEG reliably, so the
e2e pool leaves it out; the integration tests cover it at full resolution.)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.support.facedata import FACEDATA, require_facedata

W, H, FPS = 640, 480, 15


def _fit(image: np.ndarray) -> np.ndarray:
    """The picture letterboxed into W x H on a mid-grey background (no stretching)."""
    h, w = image.shape[:2]
    scale = min(W / w, H / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full((H, W, 3), 128, np.uint8)
    y, x = (H - resized.shape[0]) // 2, (W - resized.shape[1]) // 2
    canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return canvas


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{W} H{H} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(_fit(frame), cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def _clip(name: str) -> list[np.ndarray]:
    require_facedata()
    capture = cv2.VideoCapture(str(FACEDATA / "video" / f"{name}.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise FileNotFoundError(f"no frames in {name} under {FACEDATA}")
    return frames


def face_feed(path: Path) -> Path:
    clip = _clip("lp_driving_d3")  # 30 fps; [a:b:2] plays at real speed in a 15 fps file, [a:b] at half speed
    ahead = clip[66:100:2] + clip[100:66:-2]  # looking ahead, there and back (no jump)
    frames = ahead * 2  # ~4.5 s
    frames += clip[44:72]  # blink (48-61), half speed
    frames += clip[72:100:2] + clip[100:72:-2]
    frames += clip[236:310:2]  # turn to her left (255-290) and back to the front
    return write_y4m(path, frames)


def still_feed(path: Path, picture: Path, seconds: float = 2.0) -> Path:
    image = cv2.imread(str(picture), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(picture)
    return write_y4m(path, [image] * int(FPS * seconds))


def print_attack_feed(path: Path) -> Path:
    """A printed photo held in front of the camera (the anti-spoof set's print attack), looped."""
    return still_feed(path, require_facedata() / "antispoof" / "sfas_F1_print.jpg")
