"""MiniFASNet V2 + V1SE: every attack sample below the threshold, live captures above."""

from __future__ import annotations


def test_attacks_rejected_and_live_accepted(engine, items, read_bytes):
    thr = engine.config.antispoof_threshold
    attack_ids = {it.identity for it in items if it.is_attack}
    attacks = [it for it in items if it.is_attack]
    live = [it for it in items if it.kind == "genuine" and it.identity in attack_ids]
    assert len(attacks) >= 20 and len(live) >= 10
    for it in attacks:
        s = engine.analyze(read_bytes(it.file), landmarks=False, single=False).antispoof
        assert s < thr, (it.file, s)
    for it in live:
        s = engine.analyze(read_bytes(it.file), landmarks=False, single=False).antispoof
        assert s >= thr, (it.file, s)
