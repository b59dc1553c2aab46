#!/usr/bin/env python
"""Face engine evaluation on a labelled folder (MANIFEST.csv layout of ../shared/facedata).

Verification: every pair of genuine-kind images (same identity = genuine pair, else
impostor), scored by the engine's embedding model; ROC AUC; FAR/FRR at the production
threshold (FaceConfig defaults) and at the threshold this data alone would pick for the
target FAR.  Anti-spoof: APCER/BPCER at the configured threshold.  Liveness: decisions on
challenge sessions cut from the videos.  Every figure overall and per age band.

Writes nothing; last line: ``face_eval: FAR=… FRR=… FAR80=… FRR80=… AUC=… APCER=… BPCER=… threshold=… pairs=…``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

sys.dont_write_bytecode = True  # write nothing into the repo, not even __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.face import FaceConfig, FaceEngine, FaceError  # noqa: E402
from backend.face.dataset import default_data_dir, read_manifest  # noqa: E402
from backend.face.liveness_sessions import build_sessions, run_session  # noqa: E402

TARGET_FAR = 0.001


def auc(gen: np.ndarray, imp: np.ndarray) -> float:
    if len(gen) == 0 or len(imp) == 0:
        return float("nan")
    r = rankdata(np.concatenate([gen, imp]))
    return float((r[: len(gen)].sum() - len(gen) * (len(gen) + 1) / 2) / (len(gen) * len(imp)))


def far_frr(gen: np.ndarray, imp: np.ndarray, thr: float) -> tuple[float, float]:
    far = float((imp >= thr).mean()) if len(imp) else float("nan")
    frr = float((gen < thr).mean()) if len(gen) else float("nan")
    return far, frr


def threshold_for_far(imp: np.ndarray, target: float) -> float:
    """Lowest threshold whose FAR on these impostor scores is <= target."""
    if len(imp) == 0:
        return float("nan")
    s = np.sort(imp)[::-1]
    k = int(np.floor(target * len(s)))  # this many impostors may pass
    return float(np.nextafter(s[k], np.inf)) if k < len(s) else float(s[-1])


def pct(x: float) -> str:
    return "   n/a" if not np.isfinite(x) else f"{100 * x:5.2f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="data folder (default ../shared/facedata)")
    ap.add_argument("--no-liveness", action="store_true", help="skip the video sessions")
    ap.add_argument("--target-far", type=float, default=TARGET_FAR, help="FAR the data-picked threshold aims at")
    args = ap.parse_args()
    data = (args.data or default_data_dir()).resolve()
    target_far = args.target_far
    cfg = FaceConfig()
    t0 = time.time()
    engine = FaceEngine(cfg)
    items = read_manifest(data)

    # --- embeddings, once per image ---------------------------------------------------------
    emb: dict[str, np.ndarray] = {}
    spoof: dict[str, float] = {}
    failed: list[tuple[str, str]] = []
    for it in items:
        if it.kind == "video":
            continue
        try:
            # largest face: several evaluation photos are press photos with people behind
            obs = engine.analyze((data / it.file).read_bytes(), embed=it.kind == "genuine", landmarks=False,
                                 single=False)
        except FaceError as e:
            failed.append((it.file, e.code))
            continue
        spoof[it.file] = obs.antispoof
        if obs.embedding is not None:
            emb[it.file] = obs.embedding
    gen_items = [it for it in items if it.kind == "genuine" and it.file in emb]
    print(f"data {data}: {len(items)} items, {len(gen_items)} genuine images embedded with {engine.model_id}, "
          f"failed to acquire {len(failed)}: {failed}")

    # --- pairs --------------------------------------------------------------------------------
    E = np.stack([emb[it.file] for it in gen_items])
    S = E @ E.T
    ids = np.array([it.identity for it in gen_items])
    ages = np.array([it.age if it.age is not None else -1 for it in gen_items])
    iu, ju = np.triu_indices(len(gen_items), 1)
    scores = S[iu, ju]
    same = ids[iu] == ids[ju]
    bands = {
        "all": np.ones_like(same),
        "both 80+": (ages[iu] >= 80) & (ages[ju] >= 80),
        "both 65+": (ages[iu] >= 65) & (ages[ju] >= 65),
        "age unknown": (ages[iu] < 0) & (ages[ju] < 0),
    }
    thr = cfg.match_threshold
    thr80 = cfg.accept_threshold(cfg.elder_age)
    print(f"\nverification ({engine.model_id}); production thresholds: accept {thr:.3f}, "
          f"80+ accept {thr80:.3f}, review from {cfg.match_review_threshold:.3f}; target FAR {target_far:.2%}")
    hdr = (f"{'band':<12} {'gen':>5} {'imp':>6} {'gen mean':>8} {'imp mean':>8} {'imp p99.9':>9} {'AUC':>6} "
           f"{'FAR@prod':>8} {'FRR@prod':>8} {'gen rev':>7} {'imp rev':>7} {'thr@data':>8} {'FAR@data':>8} {'FRR@data':>8}")
    print(hdr)
    print("-" * len(hdr))
    res: dict[str, dict[str, float]] = {}
    for name, m in bands.items():
        g, i = scores[m & same], scores[m & ~same]
        t_prod = thr80 if name == "both 80+" else thr
        far, frr = far_frr(g, i, t_prod)
        t_data = threshold_for_far(i, target_far)
        far_d, frr_d = far_frr(g, i, t_data)
        rev = float(((g >= cfg.match_review_threshold) & (g < t_prod)).mean()) if len(g) else float("nan")
        irev = float(((i >= cfg.match_review_threshold) & (i < t_prod)).mean()) if len(i) else float("nan")
        a = auc(g, i)
        res[name] = {"far": far, "frr": frr, "auc": a, "t_data": t_data}
        p999 = float(np.quantile(i, 0.999)) if len(i) else float("nan")
        print(f"{name:<12} {len(g):>5} {len(i):>6} {np.mean(g) if len(g) else float('nan'):8.3f} "
              f"{np.mean(i) if len(i) else float('nan'):8.3f} {p999:9.3f} {a:6.4f} {pct(far):>8} {pct(frr):>8} "
              f"{pct(rev):>7} {pct(irev):>7} {t_data:8.3f} {pct(far_d):>8} {pct(frr_d):>8}")
    print("(gen rev / imp rev: share of genuine / impostor pairs in the review band [review, accept): "
          "sent to a person, neither accepted nor rejected)")
    # several frames: enrol one photo, probe with the centroid of the identity's other photos
    by_id: dict[str, list[int]] = {}
    for k, it in enumerate(gen_items):
        by_id.setdefault(it.identity, []).append(k)
    multi = {i: ks for i, ks in by_id.items() if len(ks) >= 3}
    if len(multi) >= 2:
        def centroid(ks: list[int]) -> np.ndarray:
            v = E[ks].mean(axis=0)
            return v / np.linalg.norm(v)

        names = sorted(multi)
        gen_f = np.array([float(E[multi[i][0]] @ centroid(multi[i][1:])) for i in names])
        imp_f = np.array([float(E[multi[i][0]] @ centroid(multi[j][1:])) for i in names for j in names if i != j])
        far_f, frr_f = far_frr(gen_f, imp_f, thr)
        print(f"fused probes (1 enrolment photo vs centroid of 2-3 other photos; {len(names)} identities): "
              f"genuine {len(gen_f)} mean {gen_f.mean():.3f} min {gen_f.min():.3f}, impostor {len(imp_f)} max "
              f"{imp_f.max():.3f}; FAR {pct(far_f)} FRR {pct(frr_f)} at {thr:.3f}")
    top = np.argsort(-np.where(same, -np.inf, scores))[:5]
    print("highest impostor pairs: " + "; ".join(
        f"{gen_items[iu[k]].file} ~ {gen_items[ju[k]].file} {scores[k]:.3f}" for k in top))
    low = np.argsort(np.where(same, scores, np.inf))[:5]
    print("lowest genuine pairs:   " + "; ".join(
        f"{gen_items[iu[k]].file} ~ {gen_items[ju[k]].file} {scores[k]:.3f}" for k in low))

    # --- anti-spoof ---------------------------------------------------------------------------
    attack_ids = {it.identity for it in items if it.is_attack}
    attacks = [it for it in items if it.is_attack and it.file in spoof]
    # bona fide = live captures of the attack subjects (same cameras and rooms as the attacks)
    live = [it for it in items if it.kind == "genuine" and it.identity in attack_ids and it.file in spoof]
    a_scores = np.array([spoof[it.file] for it in attacks])
    l_scores = np.array([spoof[it.file] for it in live])
    apcer = float((a_scores >= cfg.antispoof_threshold).mean()) if len(a_scores) else float("nan")
    bpcer = float((l_scores < cfg.antispoof_threshold).mean()) if len(l_scores) else float("nan")
    print(f"\nanti-spoof (MiniFASNet V2+V1SE mean) at threshold {cfg.antispoof_threshold:.3f}: "
          f"APCER {pct(apcer)} ({int((a_scores >= cfg.antispoof_threshold).sum())}/{len(a_scores)} attacks accepted), "
          f"BPCER {pct(bpcer)} ({int((l_scores < cfg.antispoof_threshold).sum())}/{len(l_scores)} live rejected), "
          f"AUC {auc(l_scores, a_scores):.4f}")
    print(f"  attack scores max {a_scores.max():.3f}; live scores min {l_scores.min():.3f}; "
          f"live below review {cfg.antispoof_review_threshold:.2f}: {int((l_scores < cfg.antispoof_review_threshold).sum())}")
    print("  age bands: no attack or live-capture subject in this data has an age label "
          "(80+: n/a, 65+: n/a); the elderly photos are news photos, not live captures")

    # --- liveness -----------------------------------------------------------------------------
    if not args.no_liveness:
        print("\nliveness sessions (videos; expected -> decision, reasons)")
        ok = 0
        sessions = build_sessions(items)
        for s in sessions:
            v = run_session(engine, s, data)
            good = (v.decision == "pass") == s.expect_pass
            ok += good
            print(f"  {'ok ' if good else 'BAD'} {s.name:<48} {'accept' if s.expect_pass else 'reject':<6} -> "
                  f"{v.decision:<6} {','.join(v.reasons) or '-'} (as={v.antispoof if v.antispoof is None else round(v.antispoof, 2)}, "
                  f"id={v.identity_min if v.identity_min is None else round(v.identity_min, 2)})")
        vids = [it for it in items if it.kind == "video"]
        print(f"  {ok}/{len(sessions)} sessions decided as expected; videos: {len(vids)}, all subjects under 65 "
              "(age bands 80+/65+: n/a)")

    a = res["all"]
    e80 = res["both 80+"]
    print(f"\nelapsed {time.time() - t0:.1f} s")
    print(f"face_eval: FAR={a['far']:.4f} FRR={a['frr']:.4f} FAR80={e80['far']:.4f} FRR80={e80['frr']:.4f} "
          f"AUC={a['auc']:.4f} APCER={apcer:.4f} BPCER={bpcer:.4f} threshold={thr:.3f} pairs={len(scores)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
