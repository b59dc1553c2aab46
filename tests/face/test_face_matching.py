"""Same person above the production threshold, different people below; templates round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from backend.face import FaceConfig, FaceTemplate, TemplateError

SAME = [
    ("faces/df01/img1.jpg", "faces/df01/img2.jpg"),
    ("faces/fr01_obama/obama.jpg", "faces/fr01_obama/obama2.jpg"),
    ("faces/nuaa_0007/nuaa_0007_live_0007_00_00_01_259.jpg", "faces/nuaa_0007/nuaa_0007_live_0007_01_05_03_248.jpg"),
    ("faces/trueface_A/trueface_A_near_real.jpg", "faces/trueface_A/trueface_A_far_real.jpg"),
]
DIFFERENT = [
    ("faces/df01/img1.jpg", "faces/fr01_obama/obama.jpg"),
    ("faces/trueface_A/trueface_A_near_real.jpg", "faces/nuaa_0007/nuaa_0007_live_0007_00_00_01_259.jpg"),
    ("faces/single_astronaut/astronaut.png", "faces/single_tom_hanks/Tom_Hanks_54745.png"),
]


@pytest.fixture(scope="module")
def emb(engine, read_bytes):
    cache: dict[str, object] = {}

    def get(rel: str):
        if rel not in cache:
            cache[rel] = engine.analyze(read_bytes(rel), embed=True, single=False)
        return cache[rel]

    return get


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_person_accepted(engine, emb, a, b):
    t = engine.enroll([emb(a)])
    r = engine.verify(t, [emb(b)])
    assert r.score >= engine.config.match_threshold, r
    assert r.decision == "accept"


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_people_rejected(engine, emb, a, b):
    t = engine.enroll([emb(a)])
    r = engine.verify(t, [emb(b)])
    assert r.score < engine.config.match_review_threshold, r
    assert r.decision == "reject"


def test_elderly_pairs(engine, emb, items):
    """Both people 80+: genuine pairs of the elderly set mostly pass the stricter 80+ threshold,
    and no impostor pair among them passes it."""
    elder = [it for it in items if it.kind == "genuine" and (it.age or 0) >= 80 and it.file.startswith("faces/lfw_")]
    by_id: dict[str, list[str]] = {}
    for it in elder:
        by_id.setdefault(it.identity, []).append(it.file)
    ids = sorted(by_id)[:8]
    e = {f: emb(f).embedding for i in ids for f in by_id[i]}
    thr = engine.config.accept_threshold(85)
    assert thr > engine.config.match_threshold
    gen = [float(e[a] @ e[b]) for i in ids for k, a in enumerate(by_id[i]) for b in by_id[i][k + 1 :]]
    imp = [float(e[a] @ e[b]) for x, i in enumerate(ids) for j in ids[x + 1 :] for a in by_id[i] for b in by_id[j]]
    assert np.mean(np.array(gen) >= thr) >= 0.8
    assert max(imp) < thr


def test_multi_frame_fusion_and_review_band(engine, emb):
    t = engine.enroll([emb(SAME[1][0]), emb("faces/fr01_obama/obama3.jpg")])
    assert t.embeddings.shape == (2, 192)
    r = engine.verify(t, [emb(SAME[1][1]), emb("faces/fr01_obama/obama1.jpg")])
    assert r.decision == "accept" and len(r.frame_scores) == 2
    cfg = engine.config
    from backend.face.matching import decide

    mid = (cfg.match_review_threshold + cfg.match_threshold) / 2
    assert decide(mid, cfg) == "review"
    assert decide(cfg.match_threshold, cfg, age=79) == "accept"
    assert decide(cfg.match_threshold, cfg, age=85) == "review"  # stricter for 80+


def test_template_bytes_round_trip(engine, emb):
    t = engine.enroll([emb(SAME[0][0]), emb(SAME[0][1])])
    b = t.to_bytes()
    assert isinstance(b, bytes) and len(b) < 4096
    t2 = FaceTemplate.from_bytes(b)
    assert t2.model_id == t.model_id and t2.model_version == t.model_version
    np.testing.assert_array_equal(t2.embeddings, t.embeddings)
    assert engine.match(t2, [emb(SAME[0][1])]) == pytest.approx(engine.match(t, [emb(SAME[0][1])]))
    for broken in (b[:-5], b"XXXX" + b[4:], b[:10], b + b"\x00"):
        with pytest.raises(TemplateError):
            FaceTemplate.from_bytes(broken)


def test_config_thresholds_are_consistent():
    cfg = FaceConfig()
    assert cfg.match_review_threshold < cfg.match_threshold <= cfg.match_threshold_elder
    assert cfg.antispoof_threshold <= cfg.antispoof_review_threshold


def test_dlib_second_opinion(engine, read_bytes):
    from backend.face import FaceConfig, FaceEngine

    eng = FaceEngine(FaceConfig(dlib_second_opinion=True))
    a, b = (eng.analyze(read_bytes(f), embed=True, single=False) for f in SAME[0])
    c = eng.analyze(read_bytes(DIFFERENT[0][1]), embed=True, single=False)
    t = FaceTemplate.from_bytes(eng.enroll([a]).to_bytes())
    assert t.extra["dlib_resnet128"].shape == (1, 128)
    same, other = eng.verify(t, [b]), eng.verify(t, [c])
    assert same.decision == "accept" and other.decision == "reject"
    assert same.second_opinion > other.second_opinion
    assert engine.verify(engine.enroll([a]), [b]).second_opinion is None  # off by default
