"""A copy of the repository with nothing beside it (no ../shared) serves face enrolment and certification.

What a newcomer who clones the project gets: the face models ship in `models/face`, so the server
started from such a copy is ready and its face engine works. With a model file missing, /readyz says
not ready and names the file instead of answering ready and failing on the first enrolment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.support import clips
from tests.support.ids import fresh_elder_id

pytestmark = pytest.mark.processes
DEMO_PASSWORD = "Zhilian-demo-2026"


def copy_of_the_repository(target: Path) -> Path:
    """The tracked files (what a clone holds; front-end builds and .venv are not needed by the API)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        source = REPO_ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


def wait_until(url: str, predicate, seconds: float = 90) -> httpx.Response:
    deadline = time.monotonic() + seconds
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5)
            if predicate(last):
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never answered as expected; last: {last and last.text}")


@pytest.fixture
def lone_copy(tmp_path: Path):
    """A server running from a copy of the repository in a folder with no ../shared beside it."""
    copy = copy_of_the_repository(tmp_path / "zhilian")
    assert not (copy.parent / "shared").exists()
    hidden = copy / "models" / "face" / "iris_landmark.onnx"
    hidden.rename(hidden.with_suffix(".away"))  # first: a bundle with a file missing
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN_", "FACE_", "DATABASE_", "REDIS_"))}
    env.update(HOST="127.0.0.1", PORT=str(port), DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(copy),
               LOG_LEVEL="WARNING", CERT_CHALLENGE_ACTIONS=",".join(clips.CLIP_ACTIONS), CHAIN_URL="")
    process = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--seed-demo"], cwd=copy, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", hidden
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_lone_copy_enrols_and_certifies_with_its_own_models(lone_copy):
    url, hidden = lone_copy
    not_ready = wait_until(f"{url}/readyz", lambda r: r.status_code == 503 and "face_models" in r.text)
    assert "iris_landmark.onnx" in not_ready.json()["error"]["details"]["face_models"]

    hidden.with_suffix(".away").rename(hidden)
    ready = wait_until(f"{url}/readyz", lambda r: r.status_code == 200)
    assert ready.json()["checks"]["face_models"] == "ok"

    with httpx.Client(base_url=url, timeout=120) as http:
        token = http.post("/api/auth/staff/login", json={"username": "nq_staff", "password": DEMO_PASSWORD})
        assert token.status_code == 200, token.text
        staff = {"Authorization": f"Bearer {token.json()['access_token']}"}
        resident = http.post("/api/residents", headers=staff, json={
            "name": "林秀珍", "national_id": fresh_elder_id(age=88), "phone": "13912345678", "address": "南桥镇 1号"})
        assert resident.status_code == 201, resident.text
        rid = resident.json()["id"]
        consent = http.post(f"/api/residents/{rid}/consents", headers=staff,
                            json={"kind": "biometric", "version": "v1", "method": "paper"})
        assert consent.status_code == 201, consent.text
        files = [("frame", (f"f{i}.jpg", frame, "image/jpeg")) for i, frame in enumerate(clips.enrolment_frames())]
        enrolled = http.post(f"/api/residents/{rid}/enrolment", files=files, headers=staff)
        assert enrolled.status_code == 201, enrolled.text

        session = http.post("/api/certify/sessions", json={"resident_id": rid, "device_id": "lone-copy"},
                            headers=staff)
        assert session.status_code == 201, session.text
        info = session.json()
        frames = clips.session_frames(info["actions"])
        offsets = [int(1000 * (0.2 + i / 10)) for i in range(len(frames))]
        time.sleep(max(0.0, offsets[-1] / 1000 - 0.5))  # capture times must lie in the past
        decided = http.post(f"/api/certify/sessions/{info['session_id']}/frames", headers=staff,
                            files=[("frame", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)],
                            data={"device_id": "lone-copy", "t": [str(t) for t in offsets]})
        assert decided.status_code == 200, decided.text
        assert decided.json()["decision"] == "pass", decided.json()
