#!/usr/bin/env python
"""Face engine evaluation on any labelled folder (the MANIFEST.csv layout of ../shared/facedata).

Nothing here depends on file names: the liveness sessions come from the frame table that the
MANIFEST notes and the engine's own signals give (backend/face/frame_table.py), and every order
is by file content.  Unknown or broken files are reported and skipped, never a crash.

1. Verification: every pair of genuine images (same identity = genuine pair, else impostor),
   per age band, at the production thresholds (FaceConfig), with the review band's workload;
   then the thresholds cross-validated: picked on k-1 identity-disjoint folds, tested on the
   k-th, spread over the folds.
2. Anti-spoof, single images: APCER per attack kind (print, screen, other), BPCER on live
   captures, also cross-validated.
3. Liveness, whole sessions: genuine challenges performed (LIVE_BPCER = refused) and attack
   sessions (LIVE_APCER = accepted), per attack kind; each presentation-attack signal alone
   (MiniFASNet, planarity of the turn) and fused; how fast an attack is refused.

Writes nothing; last line:
``face_eval: FAR=… FRR=… FAR80=… FRR80=… AUC=… APCER=… BPCER=… LIVE_APCER=… LIVE_BPCER=… REVIEW_GEN=… REVIEW_IMP=… threshold=… pairs=…``
(FAR/FRR/REVIEW_* over all pairs and FAR80/FRR80 over pairs of two people 80+, at the
production thresholds; APCER/BPCER single images; LIVE_* whole sessions.)
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import rankdata

sys.dont_write_bytecode = True  # write nothing into the repo, not even __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.face import FaceConfig, FaceEngine, FaceError  # noqa: E402
from backend.face.dataset import Item, default_data_dir, read_manifest  # noqa: E402
from backend.face.frame_table import ClipTable, build_clip_table, file_digest  # noqa: E402
from backend.face.liveness_sessions import build_sessions, run_session_tracker  # noqa: E402

TARGET_FAR = 0.001
FOLDS = 5
ELDERS_PER_COMMUNITY = 300  # the review workload is said for a community this size, one session a month each


def auc(gen: np.ndarray, imp: np.ndarray) -> float:
    if len(gen) == 0 or len(imp) == 0:
        return float("nan")
    r = rankdata(np.concatenate([gen, imp]))
    return float((r[: len(gen)].sum() - len(gen) * (len(gen) + 1) / 2) / (len(gen) * len(imp)))


def far_frr(gen: np.ndarray, imp: np.ndarray, thr: float) -> tuple[float, float]:
    far = float((imp >= thr).mean()) if len(imp) else float("nan")
    frr = float((gen < thr).mean()) if len(gen) else float("nan")
    return far, frr


def share(x: np.ndarray, lo: float, hi: float) -> float:
    """Share of scores in [lo, hi): the review band."""
    return float(((x >= lo) & (x < hi)).mean()) if len(x) else float("nan")


def threshold_for_far(imp: np.ndarray, target: float) -> float:
    """Lowest threshold whose FAR on these impostor scores is <= target."""
    if len(imp) == 0:
        return float("nan")
    s = np.sort(imp)[::-1]
    k = int(np.floor(target * len(s)))  # this many impostors may pass
    return float(np.nextafter(s[k], np.inf)) if k < len(s) else float(s[-1])


def pct(x: float) -> str:
    return "   n/a" if not np.isfinite(x) else f"{100 * x:5.2f}%"


def spread(xs: list[float]) -> str:
    a = np.array([x for x in xs if np.isfinite(x)])
    if not len(a):
        return "n/a"
    return f"{a.mean():.4f} (min {a.min():.4f}, max {a.max():.4f}, sd {a.std():.4f})"


# --- reading --------------------------------------------------------------------------------

def acquire(engine: FaceEngine, data: Path, items: list[Item], problems: list[str]):
    """Embedding (genuine images) and MiniFASNet score (all images) once per image."""
    emb: dict[str, np.ndarray] = {}
    spoof: dict[str, float] = {}
    for it in items:
        if it.kind == "video":
            continue
        try:
            # largest face: several evaluation photos are press photos with people behind
            obs = engine.analyze((data / it.file).read_bytes(), embed=it.kind == "genuine", landmarks=False,
                                 single=False)
        except FaceError as e:
            problems.append(f"{it.file}: {e.code}")
            continue
        except Exception as e:  # a broken file must not stop the evaluation  # noqa: BLE001
            problems.append(f"{it.file}: unreadable ({type(e).__name__}: {e})")
            continue
        spoof[it.file] = obs.antispoof
        if obs.embedding is not None:
            emb[it.file] = obs.embedding
    return emb, spoof


def identity_folds(items: list[Item], digests: dict[str, str], k: int) -> dict[str, int]:
    """Identity -> fold, by the digest of the identity's files (never by names): identity-disjoint."""
    first: dict[str, str] = {}
    for it in items:
        d = digests[it.file]
        first[it.identity] = min(first.get(it.identity, d), d)
    order = sorted(first, key=lambda i: first[i])
    return {ident: n % k for n, ident in enumerate(order)}


# --- 1. verification ------------------------------------------------------------------------

def verification(cfg: FaceConfig, gen_items: list[Item], E: np.ndarray, folds: dict[str, int], target_far: float):
    S = E @ E.T
    ids = np.array([it.identity for it in gen_items])
    ages = np.array([it.age if it.age is not None else -1 for it in gen_items])
    iu, ju = np.triu_indices(len(gen_items), 1)
    scores = S[iu, ju]
    same = ids[iu] == ids[ju]
    a, b = ages[iu], ages[ju]
    bands = {
        "all": np.ones_like(same),
        "both 80+": (a >= 80) & (b >= 80),
        "both 65+": (a >= 65) & (b >= 65),
        "both 65-79": (a >= 65) & (a < 80) & (b >= 65) & (b < 80),
        "age unknown": (a < 0) & (b < 0),
    }
    thr, thr80, rev = cfg.match_threshold, cfg.accept_threshold(cfg.elder_age), cfg.match_review_threshold
    print(f"\n1. verification; production thresholds: accept {thr:.3f}, 80+ accept {thr80:.3f}, "
          f"review from {rev:.3f}; target FAR {target_far:.2%}")
    hdr = (f"{'band':<12} {'gen':>5} {'imp':>6} {'AUC':>6} {'FAR':>7} {'FRR':>7} {'FRR rej':>7} {'gen rev':>7} "
           f"{'imp rev':>7} {'imp p99.9':>9}")
    print(hdr)
    print("-" * len(hdr))
    res: dict[str, dict[str, float]] = {}
    for name, m in bands.items():
        g, i = scores[m & same], scores[m & ~same]
        t = thr80 if name == "both 80+" else thr
        far, frr = far_frr(g, i, t)
        res[name] = {"far": far, "frr": frr, "auc": auc(g, i), "rev_gen": share(g, rev, t), "rev_imp": share(i, rev, t)}
        p999 = float(np.quantile(i, 0.999)) if len(i) else float("nan")
        print(f"{name:<12} {len(g):>5} {len(i):>6} {res[name]['auc']:6.4f} {pct(far):>7} {pct(frr):>7} "
              f"{pct(float((g < rev).mean()) if len(g) else float('nan')):>7} {pct(res[name]['rev_gen']):>7} "
              f"{pct(res[name]['rev_imp']):>7} {p999:9.3f}")
    print("(FRR: genuine pairs not accepted; FRR rej: of them, below the review band (refused outright); "
          "gen rev / imp rev: pairs in [review, accept), sent to a person)")
    top = np.argsort(-np.where(same, -np.inf, scores))[:3]
    print("highest impostor pairs: " + "; ".join(
        f"{gen_items[iu[k]].file} ~ {gen_items[ju[k]].file} {scores[k]:.3f}" for k in top))
    low = np.argsort(np.where(same, scores, np.inf))[:3]
    print("lowest genuine pairs:   " + "; ".join(
        f"{gen_items[iu[k]].file} ~ {gen_items[ju[k]].file} {scores[k]:.3f}" for k in low))

    # --- cross-validated operating points: thresholds from k-1 folds, figures on the k-th ---
    f = np.array([folds[x] for x in ids])
    fi, fj = f[iu], f[ju]
    k = max(folds.values()) + 1 if folds else 0
    print(f"\ncross-validation over {k} identity-disjoint folds (thresholds picked on the other folds):")
    hdr = (f"{'fold':>4} {'thr':>6} {'thr80':>6} {'review':>6} {'gen':>4} {'imp':>6} {'FAR':>7} {'FRR':>7} "
           f"{'gen rev':>7} {'imp rev':>7} {'imp80':>5} {'FAR80':>7} {'gen80':>5} {'FRR80':>7}")
    print(hdr)
    cv: dict[str, list[float]] = {x: [] for x in ("thr", "thr80", "rev", "far", "frr", "rev_gen", "rev_imp",
                                                  "far80", "frr80")}
    pooled = {"gen": [], "imp": [], "gen80": [], "imp80": [], "rev_gen": [], "rev_imp": []}
    elder = bands["both 80+"]
    for fold in range(k):
        train = (fi != fold) & (fj != fold)
        test = (fi == fold) & (fj == fold)
        t = threshold_for_far(scores[train & ~same], target_far)
        t80 = max(t, threshold_for_far(scores[train & ~same & elder], target_far))
        g_train = np.sort(scores[train & same])
        # review band: down to where 1% of the training genuine pairs lie (refused below it)
        r = min(t, float(np.quantile(g_train, 0.01))) if len(g_train) else rev
        g, i = scores[test & same], scores[test & ~same]
        g80, i80 = scores[test & same & elder], scores[test & ~same & elder]
        far, frr = far_frr(g, i, t)
        far80, frr80 = far_frr(g80, i80, t80)
        for key, val in (("thr", t), ("thr80", t80), ("rev", r), ("far", far), ("frr", frr),
                         ("rev_gen", share(g, r, t)), ("rev_imp", share(i, r, t)), ("far80", far80), ("frr80", frr80)):
            cv[key].append(val)
        pooled["gen"].append(g < t)
        pooled["imp"].append(i >= t)
        pooled["gen80"].append(g80 < t80)
        pooled["imp80"].append(i80 >= t80)
        pooled["rev_gen"].append((g >= r) & (g < t))
        pooled["rev_imp"].append((i >= r) & (i < t))
        print(f"{fold:>4} {t:6.3f} {t80:6.3f} {r:6.3f} {len(g):>4} {len(i):>6} {pct(far):>7} {pct(frr):>7} "
              f"{pct(share(g, r, t)):>7} {pct(share(i, r, t)):>7} {len(i80):>5} {pct(far80):>7} {len(g80):>5} "
              f"{pct(frr80):>7}")

    def pool(key: str) -> float:
        a = np.concatenate(pooled[key]) if pooled[key] else np.zeros(0)
        return float(a.mean()) if len(a) else float("nan")

    print(f"pooled out-of-fold: FAR {pct(pool('imp'))} FRR {pct(pool('gen'))} FAR80 {pct(pool('imp80'))} "
          f"FRR80 {pct(pool('gen80'))} review: genuine {pct(pool('rev_gen'))}, impostor {pct(pool('rev_imp'))}")
    for key, label in (("thr", "accept threshold"), ("thr80", "80+ accept threshold"), ("rev", "review threshold"),
                       ("far", "FAR"), ("frr", "FRR"), ("far80", "FAR80"), ("frr80", "FRR80")):
        print(f"  {label:<22} {spread(cv[key])}")
    print(f"  review workload at the production band, {ELDERS_PER_COMMUNITY} elders a month: "
          f"~{ELDERS_PER_COMMUNITY * res['all']['rev_gen']:.1f} genuine sessions (match only; see 3. for liveness)")
    review_band_table(scores, same, bands, thr, thr80)
    return res, len(scores)


def review_band_table(scores: np.ndarray, same: np.ndarray, bands: dict[str, np.ndarray], thr: float,
                      thr80: float) -> None:
    """Sizing the review band: each lower edge's share of genuine pairs refused outright and sent to a
    person, and what that means a month for a community of elders, per band."""
    print(f"\nreview band [edge, accept): genuine refused / to review per band, and reviews a month for "
          f"{ELDERS_PER_COMMUNITY} elders of that band")
    names = ("all", "both 65+", "both 80+")
    print(f"{'edge':>5} " + " ".join(f"{n + ' rej':>12} {n + ' rev':>12} {'/month':>6}" for n in names)
          + f" {'imp rev (all)':>13}")
    for edge in (0.25, 0.30, 0.35, 0.38, 0.40, 0.45):
        cells = []
        for name in names:
            t = thr80 if name == "both 80+" else thr
            g = scores[bands[name] & same]
            rej = float((g < edge).mean()) if len(g) else float("nan")
            rev = share(g, edge, t)
            cells.append(f"{pct(rej):>12} {pct(rev):>12} {ELDERS_PER_COMMUNITY * rev:6.1f}")
        print(f"{edge:5.2f} " + " ".join(cells) + f" {pct(share(scores[~same], edge, thr)):>13}")


# --- 2. anti-spoof on single images ---------------------------------------------------------

def attack_kind(it: Item) -> str:
    return it.kind if it.kind in ("print", "screen") else "other"


def antispoof_images(cfg: FaceConfig, items: list[Item], spoof: dict[str, float], folds: dict[str, int]):
    attack_ids = {it.identity for it in items if it.is_attack}
    attacks = [it for it in items if it.is_attack and it.file in spoof]
    # bona fide = live captures of the attack subjects (same cameras and rooms as the attacks)
    live = [it for it in items if it.kind == "genuine" and it.identity in attack_ids and it.file in spoof]
    a_scores = np.array([spoof[it.file] for it in attacks])
    l_scores = np.array([spoof[it.file] for it in live])
    thr = cfg.antispoof_threshold
    apcer = float((a_scores >= thr).mean()) if len(a_scores) else float("nan")
    bpcer = float((l_scores < thr).mean()) if len(l_scores) else float("nan")
    print(f"\n2. anti-spoof, single images (MiniFASNet V2+V1SE mean) at {thr:.3f}: APCER {pct(apcer)} "
          f"({int((a_scores >= thr).sum())}/{len(a_scores)} accepted), BPCER {pct(bpcer)} "
          f"({int((l_scores < thr).sum())}/{len(l_scores)} live refused), AUC {auc(l_scores, a_scores):.4f}")
    for kind in ("print", "screen", "other"):
        ks = np.array([spoof[it.file] for it in attacks if attack_kind(it) == kind])
        if len(ks):
            print(f"  {kind:<7} {len(ks):>3} attacks: APCER {pct(float((ks >= thr).mean()))}, max score {ks.max():.3f}")
        else:
            print(f"  {kind:<7}   0 attacks: n/a")
    if len(a_scores) and len(l_scores):
        print(f"  attack scores max {a_scores.max():.3f}; live min {l_scores.min():.3f}; live below review "
              f"{cfg.antispoof_review_threshold:.2f}: {int((l_scores < cfg.antispoof_review_threshold).sum())}")
    # cross-validated: the threshold halfway between the training folds' highest attack and lowest live score
    k = max(folds.values()) + 1 if folds else 0
    errs = []
    for fold in range(k):
        tr_a = [spoof[it.file] for it in attacks if folds[it.identity] != fold]
        tr_l = [spoof[it.file] for it in live if folds[it.identity] != fold]
        te_a = np.array([spoof[it.file] for it in attacks if folds[it.identity] == fold])
        te_l = np.array([spoof[it.file] for it in live if folds[it.identity] == fold])
        if not tr_a or not tr_l:
            continue
        t = (max(tr_a) + min(tr_l)) / 2
        errs.append((t, float((te_a >= t).mean()) if len(te_a) else float("nan"),
                     float((te_l < t).mean()) if len(te_l) else float("nan"), len(te_a), len(te_l)))
    if errs:
        print("  cross-validated (threshold halfway between training attacks' max and live min): "
              + "; ".join(f"fold {n}: thr {t:.3f} APCER {pct(a)} of {na}, BPCER {pct(b)} of {nl}"
                          for n, (t, a, b, na, nl) in enumerate(errs)))
        print(f"  threshold spread {spread([e[0] for e in errs])}")
    print("  age bands: no attack or live-capture subject in this data has an age label (80+: n/a, 65+: n/a)")
    return apcer, bpcer


# --- 3. liveness sessions -------------------------------------------------------------------

def frame_table(engine: FaceEngine, data: Path, items: list[Item], problems: list[str]) -> list[ClipTable]:
    tables = []
    for it in items:
        if it.kind != "video":
            continue
        try:
            t = build_clip_table(engine, data, it)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{it.file}: clip unreadable ({type(e).__name__}: {e})")
            continue
        if not t.n_frames:
            problems.append(f"{it.file}: no frames")
            continue
        tables.append(t)
        acts = ", ".join(f"{a} {c.start}-{c.stop}/{c.step}" + (f" (also {'+'.join(sorted(c.also))})" if c.also else "")
                         for a, c in sorted(t.actions.items())) or "no actions"
        print(f"  {it.file}: {t.n_frames} frames; {acts}" + (f"; {'; '.join(t.problems)}" if t.problems else ""))
    return sorted(tables, key=lambda t: t.digest)


def signals_only(cfg: FaceConfig) -> FaceConfig:
    """The same engine deciding on nothing early: each signal is read out whole, to be judged alone."""
    return replace(cfg, early_spoof_frames=0, early_static_frames=10**6, planar_residual_threshold=-1.0,
                   stall_s=10**6)


def liveness(engine: FaceEngine, raw_engine: FaceEngine, data: Path, items: list[Item], problems: list[str],
             limit: int | None):
    cfg = engine.config
    print("\n3. liveness: the frame table (from the MANIFEST notes and the engine's yaw/mouth signals)")
    tables = frame_table(engine, data, items, problems)
    sessions = build_sessions(tables, items, data)
    if limit:
        sessions = sessions[:limit]
    print(f"sessions ({len(sessions)}; expected -> decision, reasons, MiniFASNet, planarity, seconds of frames)")
    rows = []
    for s in sessions:
        try:
            v, tr = run_session_tracker(engine, s, data)
        except Exception as e:  # noqa: BLE001
            problems.append(f"session {s.name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=2)
            continue
        raw = None
        if s.attack in ("print", "screen") and s.kind not in ("wrong_order",):
            raw, _ = run_session_tracker(raw_engine, s, data)  # each signal, nothing decided early
        rows.append((s, v, raw))
        good = (v.decision == "pass") == s.expect_pass
        print(f"  {'ok ' if good else 'BAD'} {s.name:<52} {'accept' if s.expect_pass else 'reject':<6} -> "
              f"{v.decision:<6} {','.join(v.reasons) or '-':<40} as={_r(v.antispoof)} flat={_r(v.planarity, 4)} "
              f"{v.duration_s:4.1f}s")
    gen = [(s, v) for s, v, _ in rows if s.expect_pass]
    att = [(s, v) for s, v, _ in rows if not s.expect_pass]
    live_bpcer = float(np.mean([v.decision == "fail" for _s, v in gen])) if gen else float("nan")
    live_apcer = float(np.mean([v.decision == "pass" for _s, v in att])) if att else float("nan")
    print(f"\n  genuine sessions {len(gen)}: refused {sum(v.decision == 'fail' for _s, v in gen)}, "
          f"to review {sum(v.decision == 'review' for _s, v in gen)} -> LIVE_BPCER {pct(live_bpcer)}")
    print(f"  attack sessions {len(att)}: accepted {sum(v.decision == 'pass' for _s, v in att)}, "
          f"to review {sum(v.decision == 'review' for _s, v in att)} -> LIVE_APCER {pct(live_apcer)}")
    for kind in sorted({s.kind for s, _v in att}):
        ks = [(s, v) for s, v in att if s.kind == kind]
        secs = [v.duration_s for _s, v in ks]
        print(f"    {kind:<15} {len(ks):>3}: accepted {sum(v.decision == 'pass' for _s, v in ks)}, review "
              f"{sum(v.decision == 'review' for _s, v in ks)}; refused after {np.median(secs):.1f} s of frames "
              f"(median, max {max(secs):.1f})")
    for attack in ("print", "screen", "other"):
        ks = [v for s, v in att if s.attack == attack]
        if ks:
            print(f"    attack kind {attack:<7} {len(ks):>3} sessions, accepted {sum(v.decision == 'pass' for v in ks)}")
    _signals(cfg, rows)
    if gen:
        rev = float(np.mean([v.decision == "review" for _s, v in gen]))
        print(f"  sessions to review: {pct(rev)} of genuine -> ~{ELDERS_PER_COMMUNITY * rev:.1f} a month for "
              f"{ELDERS_PER_COMMUNITY} elders (plus the match's band, 1.)")
    print("  age bands: every video subject is under 65 (one about 60, unconfirmed): 80+ n/a, 65+ n/a")
    return live_apcer, live_bpcer


def _r(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _signals(cfg: FaceConfig, rows) -> None:
    """Each presentation-attack signal alone and fused, on the picture attacks and the genuine sessions."""
    pics = [(s, raw) for s, _v, raw in rows if raw is not None]
    gen = [(s, v) for s, v, _raw in rows if s.expect_pass]

    def as_reject(v) -> bool:
        return v.antispoof is not None and v.antispoof < cfg.antispoof_threshold

    def flat_reject(v) -> bool:
        return v.planarity is not None and v.planarity < cfg.planar_residual_threshold

    print(f"\n  presentation-attack signals (MiniFASNet < {cfg.antispoof_threshold}; planarity residual < "
          f"{cfg.planar_residual_threshold} of the eye distance; fused = either):")
    for label, group in (("picture attacks (still + tilted)", [raw for _s, raw in pics]),
                         ("genuine sessions", [v for _s, v in gen])):
        if not group:
            continue
        n = len(group)
        measured = [v.planarity for v in group if v.planarity is not None]
        a = sum(map(as_reject, group))
        f = sum(map(flat_reject, group))
        both = sum(as_reject(v) or flat_reject(v) for v in group)
        print(f"    {label:<34} n={n:>3}: MiniFASNet alone refuses {a}, planarity alone {f} "
              f"(measured in {len(measured)}: {_range(measured)}), fused {both}")
    tilted = [raw for s, raw in pics if s.kind.endswith("_moving")]
    if tilted:
        print(f"    tilted pictures: FaceMesh registered a turn (>= {cfg.turn_yaw_deg:.0f} deg) in "
              f"{sum('turn_left' in v.actions_done for v in tilted)} of {len(tilted)}; planarity measured in "
              f"{sum(v.planarity is not None for v in tilted)}")
    par = [v.parallax for _s, v in gen if v.parallax is not None]
    if par:
        print(f"    cross-check, nose parallax per sin(yaw) on genuine turns: {_range(par)} (not decided on)")


def _range(xs: list[float]) -> str:
    return f"min {min(xs):.4f} median {float(np.median(xs)):.4f} max {max(xs):.4f}" if xs else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="data folder (default ../shared/facedata)")
    ap.add_argument("--no-liveness", action="store_true", help="skip the video sessions")
    ap.add_argument("--target-far", type=float, default=TARGET_FAR, help="FAR the picked thresholds aim at")
    ap.add_argument("--folds", type=int, default=FOLDS, help="identity-disjoint folds for cross-validation")
    ap.add_argument("--max-sessions", type=int, default=None, help="only the first N sessions (development)")
    args = ap.parse_args()
    data = (args.data or default_data_dir()).resolve()
    cfg = FaceConfig()
    t0 = time.time()
    problems: list[str] = []
    items = read_manifest(data, problems)
    engine = FaceEngine(cfg)
    digests = {}
    for it in items:
        try:
            digests[it.file] = file_digest(data / it.file)
        except OSError as e:
            problems.append(f"{it.file}: {e}")
    items = [it for it in items if it.file in digests]
    emb, spoof = acquire(engine, data, items, problems)
    gen_items = sorted((it for it in items if it.kind == "genuine" and it.file in emb), key=lambda it: digests[it.file])
    print(f"data {data}: {len(items)} usable items, {len(gen_items)} genuine images embedded with {engine.model_id}")
    folds = identity_folds([it for it in items if it.kind != "video"], digests, args.folds)
    if len(gen_items) >= 2:
        res, n_pairs = verification(cfg, gen_items, np.stack([emb[it.file] for it in gen_items]), folds,
                                    args.target_far)
    else:
        nan = float("nan")
        res, n_pairs = {b: {"far": nan, "frr": nan, "auc": nan, "rev_gen": nan, "rev_imp": nan}
                        for b in ("all", "both 80+")}, 0
        print("verification: fewer than two genuine images, n/a")
    apcer, bpcer = antispoof_images(cfg, items, spoof, folds)
    live_apcer = live_bpcer = float("nan")
    if not args.no_liveness:
        raw_engine = FaceEngine(signals_only(cfg))
        live_apcer, live_bpcer = liveness(engine, raw_engine, data, items, problems, args.max_sessions)
    print(f"\nproblems ({len(problems)}): " + ("; ".join(problems) if problems else "none"))
    a, e80 = res["all"], res["both 80+"]
    print(f"elapsed {time.time() - t0:.1f} s")
    print(f"face_eval: FAR={a['far']:.4f} FRR={a['frr']:.4f} FAR80={e80['far']:.4f} FRR80={e80['frr']:.4f} "
          f"AUC={a['auc']:.4f} APCER={apcer:.4f} BPCER={bpcer:.4f} LIVE_APCER={live_apcer:.4f} "
          f"LIVE_BPCER={live_bpcer:.4f} REVIEW_GEN={a['rev_gen']:.4f} REVIEW_IMP={a['rev_imp']:.4f} "
          f"threshold={cfg.match_threshold:.3f} pairs={n_pairs}")
    return 0


if __name__ == "__main__":
    cv2.setNumThreads(1)
    raise SystemExit(main())
