"""Sending messages to residents and helpers through an adapter chosen by configuration.

The `outbox` adapter (development and tests) records each message in the
`outbound_message` table and the log instead of reaching a gateway; real SMS and WeChat
adapters implement the same `MessageSender` protocol.
"""

from __future__ import annotations

import logging
from typing import Protocol

from backend.notify.models import OutboundMessage
from backend.security.fieldcrypt import FieldCipher

log = logging.getLogger("zhilian.notify")

TEMPLATES = {
    "login_code": "【智链】您的登录验证码是 {code}，{minutes} 分钟内有效。请勿告诉他人。",
}

PHONE_PURPOSE = "phone"


class MessageSender(Protocol):
    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None: ...


class OutboxSender:
    """Development sender: writes the rendered message to the outbox table and the log."""

    channel = "sms"

    def __init__(self, cipher: FieldCipher) -> None:
        self._cipher = cipher

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        body = TEMPLATES[template].format(**params)
        await OutboundMessage.create(
            channel=self.channel,
            recipient_cipher=self._cipher.encrypt_text(phone, purpose=PHONE_PURPOSE),
            recipient_index=self._cipher.blind_index(phone, purpose=PHONE_PURPOSE),
            template=template,
            body=body,
            status="outbox",
        )
        log.info("outbox message", extra={"template": template, "to": phone[:3] + "****" + phone[-4:], "body": body})


def create_sender(kind: str, cipher: FieldCipher) -> MessageSender:
    if kind == "outbox":
        return OutboxSender(cipher)
    raise ValueError(f"unknown SMS_SENDER {kind!r}; available: outbox")
