"""Sending messages to residents and helpers through an adapter chosen by configuration.

The `outbox` adapter (development and tests only; production refuses it) records each message
in the `outbound_message` table instead of reaching a gateway; real SMS and WeChat
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
    "reminder_due_soon": "【智链】{name}老人{month}的高龄补贴认证还没有完成，请在本月{due_day}日前打开智链完成认证，"
                         "有困难请拨打{phone}。",
    "reminder_overdue": "【智链】{name}老人{month}的高龄补贴认证已逾期，请尽快打开智链完成认证，"
                        "或拨打{phone}预约上门认证。",
}

PHONE_PURPOSE = "phone"


def render(template: str, params: dict[str, str]) -> str:
    """The text of a gateway message; in-app notices (backend/notify/notices.py) are refused here.

    Those are delivered by being stored, so handing one to SMS or WeChat is a bug, not a send.
    """
    if template not in TEMPLATES:
        raise ValueError(f"{template!r} is not a message for SMS or WeChat (in-app notices are never sent)")
    return TEMPLATES[template].format(**params)


class MessageSender(Protocol):
    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None: ...


class OutboxSender:
    """Development sender: the `outbound_message` table is the phone (the message text, codes included, is kept there).

    Production refuses it (settings). The log names the message, never its text: a login code must
    not reach log files, even in development.
    """

    channel = "sms"

    def __init__(self, cipher: FieldCipher) -> None:
        self._cipher = cipher

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        body = render(template, params)
        await OutboundMessage.create(
            channel=self.channel,
            recipient_cipher=self._cipher.encrypt_text(phone, purpose=PHONE_PURPOSE),
            recipient_index=self._cipher.blind_index(phone, purpose=PHONE_PURPOSE),
            template=template,
            body=body,
            status="outbox",
        )
        log.info("outbox message", extra={"template": template, "to": phone[:3] + "****" + phone[-4:]})


class GatewayError(Exception):
    """The SMS gateway refused or failed to take the message."""


class HttpSmsSender:
    """Real adapter for an HTTP SMS gateway (the JSON shape most Chinese SMS providers' relays take).

    POST {SMS_GATEWAY_URL} with `Authorization: Bearer {SMS_GATEWAY_KEY}` and
    `{"phone", "sign", "template", "params"}`; the gateway answers `{"ok": true, "id": …}`.
    Every message is also recorded in the outbox table (status sent / failed) for the audit of contact.
    """

    channel = "sms"

    def __init__(self, *, url: str, api_key: str, sign: str, cipher: FieldCipher, timeout_s: float = 10.0) -> None:
        if not url or not api_key:
            raise ValueError("SMS_SENDER=http needs SMS_GATEWAY_URL and SMS_GATEWAY_KEY")
        self._url = url
        self._api_key = api_key
        self._sign = sign
        self._cipher = cipher
        self._timeout = timeout_s

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> None:
        import httpx

        body = render(template, params)
        status = "sent"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.post(
                    self._url, headers={"Authorization": f"Bearer {self._api_key}"},
                    json={"phone": phone, "sign": self._sign, "template": template, "params": params},
                )
            if response.status_code != 200 or not response.json().get("ok"):
                status = "failed"
                raise GatewayError(f"gateway answered {response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            status = "failed"
            raise GatewayError(f"gateway unreachable: {exc}") from exc
        finally:
            await OutboundMessage.create(
                channel=self.channel, recipient_cipher=self._cipher.encrypt_text(phone, purpose=PHONE_PURPOSE),
                recipient_index=self._cipher.blind_index(phone, purpose=PHONE_PURPOSE), template=template,
                body="" if template == "login_code" else body, status=status,
            )


class WeChatTemplateSender:
    """Real adapter for WeChat official-account template messages (to a user's openid).

    Gets an access token (`/cgi-bin/token`, cached until shortly before it expires) and posts
    `/cgi-bin/message/template/send`. Template ids per message kind come from configuration.
    """

    channel = "wechat"

    def __init__(self, *, app_id: str, app_secret: str, template_ids: dict[str, str], cipher: FieldCipher,
                 api_base: str = "https://api.weixin.qq.com", timeout_s: float = 10.0) -> None:
        self._app_id = app_id
        self._secret = app_secret
        self._template_ids = template_ids
        self._cipher = cipher
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout_s
        self._token: tuple[str, float] | None = None

    def handles(self, template: str) -> bool:
        return template in self._template_ids and template in TEMPLATES

    async def _access_token(self, http) -> str:
        import time

        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        response = await http.get(f"{self._api_base}/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self._app_id, "secret": self._secret})
        data = response.json()
        if "access_token" not in data:
            raise GatewayError(f"WeChat token refused: {data.get('errcode')} {data.get('errmsg')}")
        self._token = (data["access_token"], time.monotonic() + int(data.get("expires_in", 7200)) - 300)
        return self._token[0]

    async def send_to_openid(self, *, openid: str, template: str, params: dict[str, str]) -> None:
        import httpx

        body = render(template, params)
        status = "sent"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                token = await self._access_token(http)
                response = await http.post(
                    f"{self._api_base}/cgi-bin/message/template/send", params={"access_token": token},
                    json={"touser": openid, "template_id": self._template_ids[template],
                          "data": {key: {"value": value} for key, value in params.items()}},
                )
            data = response.json()
            if data.get("errcode", 0) != 0:
                status = "failed"
                raise GatewayError(f"WeChat refused the message: {data.get('errcode')} {data.get('errmsg')}")
        except httpx.HTTPError as exc:
            status = "failed"
            raise GatewayError(f"WeChat unreachable: {exc}") from exc
        finally:
            await OutboundMessage.create(
                channel=self.channel, recipient_cipher=self._cipher.encrypt_text(openid, purpose="wechat_openid"),
                recipient_index=self._cipher.blind_index(openid, purpose="wechat_openid"), template=template,
                body=body, status=status,
            )


def create_wechat_sender(*, app_id: str, app_secret: str, template_ids: str, api_base: str,
                         cipher: FieldCipher) -> WeChatTemplateSender | None:
    """The WeChat adapter when configured ("kind:template_id,…"), else None (SMS only)."""
    if not app_id or not app_secret or not template_ids:
        return None
    ids = dict(item.split(":", 1) for item in template_ids.split(",") if ":" in item)
    return WeChatTemplateSender(app_id=app_id, app_secret=app_secret, template_ids=ids, cipher=cipher,
                                api_base=api_base)


def create_sender(kind: str, cipher: FieldCipher, *, url: str = "", api_key: str = "", sign: str = "智链") -> MessageSender:
    if kind == "outbox":
        return OutboxSender(cipher)
    if kind == "http":
        return HttpSmsSender(url=url, api_key=api_key, sign=sign, cipher=cipher)
    raise ValueError(f"unknown SMS_SENDER {kind!r}; available: outbox, http")
