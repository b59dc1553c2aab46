#!/usr/bin/env python3
"""Recorded zh-CN voice clips for phones whose browser has no speechSynthesis (DESIGN §5a).

Run once when the phrases change (needs Debian's espeak-ng: `apt-get install espeak-ng`):
    python3 miniapp/scripts/make_voice_clips.py
Writes miniapp/public/voice/NN.wav (12 kHz, 8-bit mono: small, and speech stays clear) and
miniapp/src/voice-clips.json (phrase -> file), both committed, so a build needs no TTS.
The phrases are the fixed sentences the challenge screen speaks: each prompt, the guidance the
server sends, what went wrong, and the result.  A longer sentence is spoken clip by clip, split at
its punctuation (voice.js).  Licence: espeak-ng's output is not covered by its GPL-3.0 (see
public/voice/LICENSE).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

MINIAPP = Path(__file__).resolve().parents[1]
OUT = MINIAPP / "public" / "voice"
INDEX = MINIAPP / "src" / "voice-clips.json"
RATE = 12000

PHRASES = [
    # the challenge (backend/face/liveness.py PROMPTS) and its steps
    "请眨眨眼", "请慢慢向左转头", "请慢慢向右转头", "请张张嘴", "请慢慢点头",
    "一共两个动作", "一共三个动作", "慢慢来", "第一个", "好的", "下一个", "动作完成，请稍候",
    # before starting
    "请把脸放进框里", "请把摄像头对准老人的脸", "准备好后点“开始”",
    # guidance while running (backend/face/quality.py, errors.py)
    "请靠近一点", "请离远一点", "光线太暗，请到亮一点的地方", "光线太亮，请避开强光", "请保持手机稳定",
    "请正对屏幕", "没有检测到人脸", "画面中有多张人脸", "请只保留一张人脸",
    # what went wrong (backend/face/liveness.py MESSAGES)
    "时间到了", "动作没有做完", "动作顺序不对", "中途换了人", "看起来像是照片或屏幕", "不是本人",
    "转头时画面像一张平的照片或屏幕", "画面一直不动，像是照片", "画面时间不连续", "网络可能不好", "收到的画面太少",
    "一直没有看到脸", "光线太暗，看不清脸", "光线太亮，看不清脸", "画面一直在晃，看不清脸", "离得太远，看不清脸",
    "离得太近，看不全脸", "人脸与登记信息不一致", "需要工作人员复核", "正在核对，请稍候",
    # the result (miniapp/src/words.js advice)
    "认证成功！补贴照常发放", "这次没有成功", "需要社区工作人员再看一下，请耐心等待结果",
    "没关系，慢慢来，可以点“再试一次”", "请本人正对镜头，不要用照片、视频或屏幕", "请按提示一个一个做",
    "请到信号好的地方再试", "请让画面里只有老人一个人", "请同一个人从头做到尾", "请拨打社区电话，工作人员可以帮忙或上门认证",
]


def speak(text: str) -> np.ndarray:
    """espeak-ng's Mandarin voice, slower for older ears; silence trimmed; resampled to RATE."""
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", "cmn", "-s", "150", "-w", tmp.name, text], check=True)
        with wave.open(tmp.name) as w:
            rate = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    loud = np.flatnonzero(np.abs(x) > 0.01)
    if len(loud):
        x = x[max(0, loud[0] - rate // 20): loud[-1] + rate // 10]
    t = np.arange(int(len(x) * RATE / rate)) * rate / RATE
    return np.interp(t, np.arange(len(x)), x)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    index = {}
    for n, text in enumerate(PHRASES):
        pcm = speak(text)
        pcm = pcm / max(1e-3, float(np.abs(pcm).max())) * 0.9
        name = f"{n:02d}.wav"
        with wave.open(str(OUT / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)  # 8-bit unsigned PCM
            w.setframerate(RATE)
            w.writeframes(np.clip(pcm * 127 + 128, 0, 255).astype(np.uint8).tobytes())
        index[text] = name
    INDEX.write_text(json.dumps(index, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.glob("*.wav"))
    print(f"{len(index)} clips, {total // 1024} KiB in {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
