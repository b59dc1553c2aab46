"""Model bundle: sha256 against MANIFEST.tsv, refusal naming the file, model dir resolution."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as H
from onnx import numpy_helper as NH

from backend.face import FaceConfig, FaceEngine, ModelError, ModelIntegrityError, NoFaceError, TemplateError
from backend.face.config import DEFAULT_MODEL_DIR, REPO_ROOT
from backend.face.models import IRIS, find_insightface_pack, read_manifest


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory) -> Path:
    src = FaceConfig().resolved_model_dir()
    dst = tmp_path_factory.mktemp("models")
    for p in src.iterdir():
        shutil.copy(p, dst / p.name)
        (dst / p.name).chmod(0o644)
    return dst


def test_default_model_dir_is_relative_to_repo(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the CWD must not matter
    assert FaceConfig().resolved_model_dir() == DEFAULT_MODEL_DIR == REPO_ROOT / "models" / "face"
    assert FaceConfig(model_dir="models/face").resolved_model_dir() == DEFAULT_MODEL_DIR.resolve()


def test_copy_loads(model_copy):
    eng = FaceEngine(FaceConfig(model_dir=str(model_copy)))
    assert eng.model_id == "mobilefacenet_192"
    assert set(read_manifest(model_copy)) >= {IRIS}


def test_corrupted_byte_is_refused_naming_the_file(model_copy, tmp_path):
    bad = tmp_path / "models"
    shutil.copytree(model_copy, bad)
    target = bad / IRIS
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as ei:
        FaceEngine(FaceConfig(model_dir=str(bad)))
    assert ei.value.file == IRIS
    assert IRIS in str(ei.value) and "sha256" in str(ei.value)
    assert ei.value.code == "face.model_integrity"


def test_missing_manifest_and_unlisted_files(model_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError):
        FaceEngine(FaceConfig(model_dir=str(empty)))
    with pytest.raises(ModelError):
        FaceEngine(FaceConfig(model_dir=str(tmp_path / "nope")))
    partial = tmp_path / "partial"
    shutil.copytree(model_copy, partial)
    (partial / IRIS).unlink()
    with pytest.raises(ModelError, match=IRIS):
        FaceEngine(FaceConfig(model_dir=str(partial)))


def test_insightface_pack_found_by_name(tmp_path):
    assert find_insightface_pack(tmp_path) is None
    pack = tmp_path / "buffalo_l"
    pack.mkdir()
    for name in ("det_10g.onnx", "w600k_r50.onnx", "1k3d68.onnx"):
        (pack / name).write_bytes(b"x")
    det, rec = find_insightface_pack(tmp_path)
    assert det.name == "det_10g.onnx" and rec.name == "w600k_r50.onnx"
    # placed but not listed in MANIFEST.tsv: refused, the operator must list its sha256
    (tmp_path / "MANIFEST.tsv").write_text("file\tsha256\tbytes\trole\n")
    with pytest.raises(ModelError, match="not listed"):
        FaceEngine(FaceConfig(model_dir=str(tmp_path), embed_model="arcface"))
    with pytest.raises(ModelError, match="no insightface pack"):
        FaceEngine(FaceConfig(model_dir=str(FaceConfig().resolved_model_dir()), embed_model="arcface"))


# --- an operator's insightface pack: the code path, with stand-in graphs of the same interface ---
# (the real buffalo_l files are licensed for non-commercial research only, so none is here)

def fake_scrfd(path):
    nodes, outs, inits = [], {"score": [], "bbox": [], "kps": []}, []
    inp = H.make_tensor_value_info("input.1", T.FLOAT, [1, 3, "h", "w"])
    for s in (8, 16, 32):
        nodes += [
            H.make_node("AveragePool", ["input.1"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]),
            H.make_node("ReduceMean", [f"p{s}"], [f"m{s}"], axes=[1], keepdims=1),
            H.make_node("Mul", [f"m{s}", "zero"], [f"z{s}"]),
            H.make_node("Reshape", [f"z{s}", "col"], [f"c{s}"]),
            H.make_node("Concat", [f"c{s}", f"c{s}"], [f"score_{s}"], axis=0),
            H.make_node("Expand", [f"score_{s}", "four"], [f"bbox_{s}"]),
            H.make_node("Expand", [f"score_{s}", "ten"], [f"kps_{s}"]),
        ]
        for k, d in (("score", 1), ("bbox", 4), ("kps", 10)):
            outs[k].append(H.make_tensor_value_info(f"{k}_{s}", T.FLOAT, [None, d]))
    inits = [NH.from_array(np.zeros((1,), np.float32), "zero"), NH.from_array(np.array([-1, 1], np.int64), "col"),
             NH.from_array(np.array([1, 4], np.int64), "four"), NH.from_array(np.array([1, 10], np.int64), "ten")]
    g = H.make_graph(nodes, "scrfd_fake", [inp], outs["score"] + outs["bbox"] + outs["kps"], inits)
    onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 13)], ir_version=8), path)

def fake_arcface(path):
    inp = H.make_tensor_value_info("input.1", T.FLOAT, ["n", 3, 112, 112])
    out = H.make_tensor_value_info("683", T.FLOAT, ["n", 512])
    w = NH.from_array(np.random.default_rng(0).standard_normal((3, 512)).astype(np.float32), "w")
    nodes = [H.make_node("GlobalAveragePool", ["input.1"], ["g"]), H.make_node("Flatten", ["g"], ["f"]),
             H.make_node("MatMul", ["f", "w"], ["683"])]
    onnx.save(H.make_model(H.make_graph(nodes, "arc_fake", [inp], [out], [w]), opset_imports=[H.make_opsetid("", 13)], ir_version=8), path)


def test_insightface_pack_loads_through_onnxruntime(model_copy, tmp_path, engine, read_bytes):
    d = tmp_path / "models"
    shutil.copytree(model_copy, d)
    (d / "buffalo_l").mkdir()
    fake_scrfd(str(d / "buffalo_l/det_10g.onnx"))
    fake_arcface(str(d / "buffalo_l/w600k_r50.onnx"))
    lines = [f"{n}\t{hashlib.sha256((d / n).read_bytes()).hexdigest()}\t{(d / n).stat().st_size}\tpack\n"
             for n in ("buffalo_l/det_10g.onnx", "buffalo_l/w600k_r50.onnx")]
    with (d / "MANIFEST.tsv").open("a") as fh:
        fh.writelines(lines)
    eng = FaceEngine(FaceConfig(model_dir=str(d), embed_model="arcface"))
    assert eng.detector.name == "scrfd" and eng.model_id == "insightface_w600k_r50"
    with pytest.raises(NoFaceError):  # the stand-in detector scores every anchor 0
        eng.analyze(read_bytes("faces/df01/img1.jpg"))
    emb = eng.embedder.embed_crops([np.full((112, 112, 3), 90, np.uint8)] * 3)
    assert emb.shape == (3, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert FaceEngine(FaceConfig(model_dir=str(d))).model_id == "mobilefacenet_192"  # the default ignores it
    # a MobileFaceNet template is refused by an ArcFace engine instead of being compared
    t = engine.enroll([read_bytes("faces/df01/img1.jpg")])
    with pytest.raises(TemplateError, match="template made by"):
        eng.match(t, emb[:1])
    t.model_version = "000000000000"  # same model id, another build of the file
    with pytest.raises(TemplateError):
        engine.match(t, emb[:1])
