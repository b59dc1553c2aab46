"""The acknowledged mark: written before appends are answered, readable after a torn write of one slot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chain.log import AckMark, AckMarkError, Entry, Log, SQLiteStore


def _h(i: int) -> bytes:
    return hashlib.sha256(f"mark-{i}".encode()).digest()


async def test_every_answered_append_is_covered_by_the_mark(tmp_path: Path) -> None:
    log = Log(SQLiteStore(tmp_path / "log.sqlite3"), mark=AckMark(tmp_path / "acknowledged"))
    await log.open()
    try:
        for i in range(5):
            [appended] = await log.append([Entry(_h(i), "credential", "backend")])
            mark = AckMark(tmp_path / "acknowledged").read()  # what a restart would read now
            assert mark is not None and mark.size == appended.index + 1 == log.size
            assert mark.root_hash == log.tree.root()
        # a duplicate is answered too, and the mark still covers its index
        [again] = await log.append([Entry(_h(2), "credential", "backend")])
        assert again.duplicate and AckMark(tmp_path / "acknowledged").read().size == 5
    finally:
        await log.close()


def test_a_torn_slot_leaves_the_previous_mark_and_two_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "acknowledged"
    mark = AckMark(path)
    assert mark.read() is None
    mark.write(3, b"\x03" * 32)
    mark.write(4, b"\x04" * 32)
    mark.close()
    raw = bytearray(path.read_bytes())
    latest = 0 if raw[:2] == b"2 " else AckMark.SLOT  # the slot holding sequence number 2
    raw[latest + 5] ^= 0x01
    path.write_bytes(bytes(raw))
    reread = AckMark(path).read()
    assert reread is not None and (reread.size, reread.root_hash) == (3, b"\x03" * 32)
    raw[(AckMark.SLOT - latest) + 5] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(AckMarkError, match="both slots are damaged"):
        AckMark(path).read()
