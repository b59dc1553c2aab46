"""Masked display of personal fields (手机号、身份证号、姓名脱敏).

Staff lists and exports show masked values by default; the full value is a
separate, audited read. Masking keeps enough to tell people apart on the phone
(the last four digits) and nothing that helps reconstruct the whole number.
Input shorter than the kept parts is masked entirely rather than revealed.
"""

from __future__ import annotations

__all__ = ["mask_id", "mask_name", "mask_phone"]


def _mask(value: str | None, keep_head: int, keep_tail: int) -> str:
    if not value:
        return ""
    text = "".join(value.split())
    if len(text) <= keep_head + keep_tail:
        return "*" * len(text)
    hidden = len(text) - keep_head - keep_tail
    return text[:keep_head] + "*" * hidden + text[len(text) - keep_tail :]


def mask_phone(phone: str | None) -> str:
    """'13812345678' -> '138****5678'."""
    return _mask(phone, 3, 4)


def mask_id(number: str | None) -> str:
    """'310112194501011234' -> '3101**********1234' (province+city kept, birth date hidden)."""
    return _mask(number, 4, 4)


def mask_name(name: str | None) -> str:
    """'张桂英' -> '张*英', '王明' -> '王*', '欧阳建国' -> '欧**国': the customary Chinese masking."""
    if not name:
        return ""
    text = name.strip()
    if len(text) == 1:
        return "*"
    if len(text) == 2:
        return text[0] + "*"
    return text[0] + "*" * (len(text) - 2) + text[-1]
