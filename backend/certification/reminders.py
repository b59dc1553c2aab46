"""Reminders before the due day and when overdue, to the resident and their approved helpers.

Each (resident, period, kind, recipient) is reminded once (a unique row is written before
sending), and nothing is sent in quiet hours (local time), when an 86-year-old is asleep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError

from backend.auth.models import AppUser
from backend.certification import periods
from backend.certification.models import MonthStatus, Period, Reminder, ResidentMonth
from backend.notify.service import PHONE_PURPOSE, MessageSender, WeChatTemplateSender
from backend.residents.models import BindingStatus, Community, HelperBinding
from backend.security.fieldcrypt import FieldCipher

LOCAL_TZ = periods.LOCAL_TZ


@dataclass(frozen=True)
class ReminderPolicy:
    days_before_due: int = 5
    quiet_start_hour: int = 21  # no messages from 21:00 …
    quiet_end_hour: int = 8  # … until 08:00 local time

    def is_quiet(self, local: datetime) -> bool:
        return local.hour >= self.quiet_start_hour or local.hour < self.quiet_end_hour


def reminder_kind(period: Period, local: datetime, policy: ReminderPolicy) -> str | None:
    year, month = (int(x) for x in period.month.split("-"))
    if str(period.status) == "closed" or (local.year, local.month) > (year, month):
        return "overdue"
    if (local.year, local.month) != (year, month):
        return None
    if local.day > period.due_day:
        return "overdue"
    if period.due_day - local.day <= policy.days_before_due:
        return "due_soon"
    return None


async def send_reminders(
    *, period: Period, now: datetime, sender: MessageSender, cipher: FieldCipher, policy: ReminderPolicy | None = None,
    wechat: WeChatTemplateSender | None = None,
) -> dict[str, int | str]:
    """Remind everyone who still has to certify in `period`; returns counts (or why nothing was sent)."""
    policy = policy or ReminderPolicy()
    local = now.astimezone(LOCAL_TZ)
    if policy.is_quiet(local):
        return {"sent": 0, "skipped": "quiet_hours"}
    kind = reminder_kind(period, local, policy)
    if kind is None:
        return {"sent": 0, "skipped": "not_due"}
    statuses = [MonthStatus.PENDING] if kind == "due_soon" else [MonthStatus.PENDING, MonthStatus.OVERDUE]
    await periods.cover_new_residents(period)
    rows = await ResidentMonth.filter(period_id=period.id, status__in=statuses).prefetch_related("resident")
    community = await Community.get(id=period.community_id)  # type: ignore[attr-defined]
    sent = duplicates = 0
    for row in rows:
        resident = row.resident
        template = f"reminder_{kind}"
        params = {"name": resident.name, "month": period.month, "due_day": str(period.due_day),
                  "phone": community.phone or "社区服务电话"}
        for phone, openid in await _recipients(resident, cipher):
            try:
                await Reminder.create(resident_id=resident.id, period_id=period.id, kind=kind,
                                      recipient_index=cipher.blind_index(phone, purpose=PHONE_PURPOSE),
                                      channel="wechat" if openid and wechat else "sms")
            except IntegrityError:
                duplicates += 1
                continue
            if openid and wechat is not None and wechat.handles(template):
                await wechat.send_to_openid(openid=openid, template=template, params=params)
            else:
                await sender.send(phone=phone, template=template, params=params)
            sent += 1
    return {"sent": sent, "already_reminded": duplicates, "kind": kind}


async def _recipients(resident, cipher: FieldCipher) -> list[tuple[str, str | None]]:
    """(phone, WeChat openid or None) of the resident and their approved helpers, each once."""
    found: dict[str, str | None] = {}
    own = await AppUser.filter(resident_id=resident.id, is_active=True).first()
    if resident.phone_cipher:
        found[cipher.decrypt_text(resident.phone_cipher, purpose=PHONE_PURPOSE)] = own.wechat_openid if own else None
    helper_ids = await HelperBinding.filter(resident_id=resident.id, status=BindingStatus.APPROVED).values_list(
        "helper_id", flat=True
    )
    for helper in await AppUser.filter(id__in=list(helper_ids), is_active=True):
        found.setdefault(cipher.decrypt_text(helper.phone_cipher, purpose=PHONE_PURPOSE), helper.wechat_openid)
    return list(found.items())
