"""Model bundle: MANIFEST.tsv, sha256 verification, onnxruntime sessions.

Every model file the engine opens must be listed in ``MANIFEST.tsv`` of the model dir and
match its sha256; an operator adding a licensed insightface pack appends its lines there.
Sessions are created once (per engine, i.e. per worker) with explicit thread counts.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import ModelError, ModelIntegrityError

YUNET = "face_detection_yunet_2026may.onnx"
MOBILEFACENET = "mobilefacenet_192.onnx"
DLIB = "faceapi_dlib_resnet128.onnx"
DLIB_TEMPLATE = "dlib_chip_template150.npy"
FACEMESH = "facemesh_468.onnx"
IRIS = "iris_landmark.onnx"
FAS_V2 = "MiniFASNetV2_2.7_80x80.onnx"
FAS_V1SE = "MiniFASNetV1SE_4.0_80x80.onnx"
REQUIRED = (YUNET, MOBILEFACENET, FACEMESH, IRIS, FAS_V2, FAS_V1SE)

# insightface packs (buffalo_l/s/m, antelopev2): detector and recogniser file names.
INSIGHTFACE_DET_PREFIXES = ("det_", "scrfd")
INSIGHTFACE_REC_NAMES = ("w600k_r50.onnx", "w600k_mbf.onnx", "glintr100.onnx")


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    sha256: str
    size: int | None
    role: str


def read_manifest(model_dir: Path) -> dict[str, ManifestEntry]:
    path = model_dir / "MANIFEST.tsv"
    if not path.is_file():
        raise ModelError(f"no MANIFEST.tsv in model dir {model_dir}")
    entries: dict[str, ManifestEntry] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if not row.get("file"):
                continue
            size = row.get("bytes") or ""
            entries[row["file"]] = ManifestEntry(
                row["file"], (row.get("sha256") or "").strip().lower(), int(size) if size.isdigit() else None,
                row.get("role") or "",
            )
    return entries


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def bundle_problem(model_dir: Path) -> str | None:
    """Why this directory cannot serve the engine (missing dir, manifest, file or wrong size), or None.

    Cheap enough for a readiness probe: it stats the files and never hashes them (loading does).
    """
    if not model_dir.is_dir():
        return f"model dir {model_dir} does not exist (set FACE_MODEL_DIR or restore models/face)"
    try:
        manifest = read_manifest(model_dir)
    except (ModelError, OSError, ValueError) as exc:
        return str(exc)
    for name in REQUIRED:
        entry = manifest.get(name)
        path = model_dir / name
        if entry is None:
            return f"model file {name!r} is not listed in {model_dir / 'MANIFEST.tsv'}"
        if not path.is_file():
            return f"model file {name!r} is missing from {model_dir}"
        if entry.size is not None and path.stat().st_size != entry.size:
            return f"model file {name!r} has {path.stat().st_size} bytes, MANIFEST.tsv says {entry.size}"
    return None


def find_insightface_pack(model_dir: Path) -> tuple[Path, Path] | None:
    """(detector, recogniser) of an insightface pack placed in the model dir, found by file name."""
    files = sorted(p for p in model_dir.rglob("*.onnx"))
    det = next((p for p in files if p.name.startswith(INSIGHTFACE_DET_PREFIXES)), None)
    rec = next((p for p in files if p.name in INSIGHTFACE_REC_NAMES or p.name.startswith("arcface")), None)
    return (det, rec) if det and rec else None


@dataclass
class ModelBundle:
    """Verified model files of one directory, and the sessions opened on them (reused)."""

    model_dir: Path
    threads: int = 1
    verify: bool = True
    manifest: dict[str, ManifestEntry] = field(init=False)
    _sessions: dict[str, ort.InferenceSession] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.model_dir = Path(self.model_dir)
        if not self.model_dir.is_dir():
            raise ModelError(f"model dir {self.model_dir} does not exist")
        self.manifest = read_manifest(self.model_dir)

    def path(self, name: str) -> Path:
        """Path of a listed, present and (if enabled) sha256-verified file."""
        path = self.model_dir / name
        rel = path.relative_to(self.model_dir).as_posix()
        entry = self.manifest.get(rel)
        if entry is None:
            raise ModelError(f"model file {rel!r} is not listed in {self.model_dir / 'MANIFEST.tsv'}")
        if not path.is_file():
            raise ModelError(f"model file {rel!r} is listed in MANIFEST.tsv but missing from {self.model_dir}")
        if self.verify:
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise ModelIntegrityError(rel, entry.sha256, actual)
        return path

    def version(self, name: str) -> str:
        """Short model version for templates: the first 12 hex of the manifest sha256."""
        return self.manifest[name].sha256[:12]

    def session(self, name: str) -> ort.InferenceSession:
        if name not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait on shared cores
            self._sessions[name] = ort.InferenceSession(
                str(self.path(name)), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        return self._sessions[name]

    def load_array(self, name: str) -> np.ndarray:
        return np.load(self.path(name))

    def has(self, name: str) -> bool:
        return name in self.manifest and (self.model_dir / name).is_file()
