"""face_eval on any folder in the MANIFEST layout: renamed files and a shuffled MANIFEST give the same figures.

A small copy of the development data (a few identities, a print, a live capture, one clip) is
written twice: once as is, once with every file renamed and moved, identities renamed, the rows
shuffled, plus a broken image and a row of an unknown kind.  The script runs to its last line on
both, reports the two bad rows, and prints the same figures.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.face

PICK = ("faces/df01/", "faces/df02/", "faces/lfw_", "antispoof/sfas_F1_print.jpg", "antispoof/sfas_T1_real.jpg",
        "video/lp_driving_d0.mp4")


def subset(data_dir: Path) -> list[dict[str, str]]:
    with (data_dir / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out, lfw = [], 0
    for r in rows:
        if r["file"].startswith("faces/lfw_"):
            if lfw >= 4:
                continue
            lfw += 1
        if r["file"].startswith(PICK):
            out.append(r)
    return out


def write(folder: Path, data_dir: Path, rows: list[dict[str, str]], rename: dict[str, str]) -> None:
    for r in rows:
        target = folder / rename.get(r["file"], r["file"])
        target.parent.mkdir(parents=True, exist_ok=True)
        if (data_dir / r["file"]).is_file():
            shutil.copyfile(data_dir / r["file"], target)
    with (folder / "MANIFEST.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows({**r, "file": rename.get(r["file"], r["file"])} for r in rows)


def face_eval(folder: Path) -> list[str]:
    run = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "bench" / "face_eval.py"), "--data", str(folder)],
                         capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()


def test_renamed_and_shuffled_copy_gives_the_same_figures(data_dir, tmp_path):
    rows = subset(data_dir)
    assert any(r["kind"] == "video" for r in rows) and any(r["kind"] == "print" for r in rows)
    plain = tmp_path / "plain"
    write(plain, data_dir, rows, {})

    rng = random.Random(17)
    rename = {r["file"]: f"x{rng.randrange(10**6):06d}/{k:03d}{Path(r['file']).suffix}" for k, r in enumerate(rows)}
    renamed_ids = {ident: f"person{n}" for n, ident in enumerate(sorted({r["identity"] for r in rows}, reverse=True))}
    shuffled = [{**r, "identity": renamed_ids[r["identity"]]} for r in rows]
    rng.shuffle(shuffled)
    broken = {**shuffled[0], "file": "zz/broken.jpg", "identity": "nobody", "kind": "genuine"}
    odd = {**shuffled[1], "identity": "odd", "kind": "hologram"}
    other = tmp_path / "other"
    write(other, data_dir, [*shuffled, broken, odd], rename)
    (other / "zz").mkdir(exist_ok=True)
    (other / "zz" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    a, b = face_eval(plain), face_eval(other)
    assert a[-1].startswith("face_eval: FAR=") and "LIVE_APCER=" in a[-1] and "REVIEW_IMP=" in a[-1], a[-1]
    assert a[-1] == b[-1], (a[-1], b[-1])
    problems = next(line for line in b if line.startswith("problems ("))
    assert "zz/broken.jpg" in problems and "hologram" in problems, problems
    # the same sessions were built and decided from the renamed clip
    decided = [line.split("->")[1].split()[0] for line in a if line.strip().startswith(("ok ", "BAD"))]
    assert decided and decided == [line.split("->")[1].split()[0] for line in b
                                   if line.strip().startswith(("ok ", "BAD"))]
