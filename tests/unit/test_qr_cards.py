"""QR images and cards: scannable codes, one A6 page per card, fast enough for a whole community."""

from __future__ import annotations

import re
import uuid

from backend.qr.cards import Card, render_cards
from backend.qr.images import matrix, render
from backend.qr.tokens import QrSigner, scan_url
from tests.support.qr import decode_qr

SIGNER = QrSigner.from_secret("unit-test-qr-signing-key-000000000000000000")


def a_link() -> str:
    return scan_url("https://zhilian.example.gov.cn", SIGNER.make(public_id=uuid.uuid4(), version=1))


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def test_png_decodes_to_the_link_and_stays_small():
    link = a_link()
    assert decode_qr(render(link, "png")) == link
    assert len(matrix(link)) <= 37 + 8  # version 5 or lower, plus the quiet zone


def test_svg_is_svg():
    svg = render(a_link(), "svg")
    assert svg.lstrip().startswith((b"<svg", b"<?xml")) and b"<path" in svg


def test_cards_one_page_each():
    cards = [Card(name=name, community_name="南桥社区", community_phone="021-57112345", qr_content=a_link(),
                  qr_version=1) for name in ["王桂英", "欧阳建国", "李德明"] * 100]
    pdf = render_cards(cards)
    assert pdf.startswith(b"%PDF") and page_count(pdf) == 300
    assert b"STSong-Light" in pdf  # the CID font, so the Chinese renders without a font file


def test_many_codes_all_decode():
    for version in range(1, 60):
        link = scan_url("http://127.0.0.1:8000", SIGNER.make(public_id=uuid.uuid4(), version=version))
        assert decode_qr(render(link, "png")) == link
