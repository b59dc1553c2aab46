"""In-app notices: certification results and helper-binding news, for the app's inbox (消息通知).

A notice is a row of `outbound_message` like every other message, so the inbox needs nothing
new, but on channel "app" and already delivered (status "in_app"): it is written here, at the
moment the result is known, and never handed to a `MessageSender`, the WeChat adapter or the
worker, so it costs no SMS and cannot leave the system through a gateway (the gateway senders
refuse these templates). It is stored under the recipient's own phone index (the
`AppUser.phone_index`, the blind index every message to that phone carries) and encrypted phone.

What a notice says is kept to what the reader already knows or may know: the elder is "您"
to themself and the masked name (王*英, as the app shows it) to a helper; a helper is their
masked phone number and relation to the elder; never an ID number. A notice is a courtesy
after the fact: failing to write one is logged and never undoes or fails the step it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from backend.auth.models import AppUser
from backend.certification.models import Attempt, Decision, Period
from backend.notify.models import OutboundMessage
from backend.residents.models import BindingStatus, Community, HelperBinding, Resident
from backend.security.masking import mask_name

log = logging.getLogger("zhilian.notify")

APP_CHANNEL = "app"
IN_APP_STATUS = "in_app"  # delivered: the row itself is the message the app shows
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

APP_TEMPLATES = {
    "cert_passed": "{who}{month}的认证已通过，{month}不用再认证了。",
    "cert_review_approved": "{who}{month}的认证已由社区工作人员审核通过，{month}不用再认证了。",
    "cert_review": "{who}的认证已提交人工审核，社区工作人员会尽快处理，请耐心等待结果。",
    "cert_failed": "{who}的认证没有通过：{reason}。可以再试一次，或联系社区（{phone}）。",
    "cert_review_rejected": "{who}的认证经社区工作人员审核没有通过：{reason}。可以再试一次，或联系社区（{phone}）。",
    "binding_request": "{helper}（{relation}）申请成为您的帮办人，同意后TA可以帮您完成每月认证。"
                       "请在首页确认：认识就同意，不认识请拒绝。",
    "binding_approved": "{approval}，现在可以帮TA认证了。",
    "binding_approved_for_elder": "社区已同意{helper}（{relation}）成为您的帮办人。如有疑问请联系社区（{phone}）。",
    "binding_rejected": "您提交的帮办申请（{relation}）未获同意。如有疑问请联系老人或社区。",
    "binding_ended": "{ending}，您不能再帮TA认证了。",
    "binding_ended_for_elder": "{ending}，TA不能再帮您认证了。",
    "binding_withdrawn_for_elder": "{helper}（{relation}）撤回了帮办申请，不需要您再处理。",
    # 随手拍 work orders: the reporter and followers hear of each step (composed by backend/workorders)
    "wo_submitted": "您反映的“{category}”（{number}）已提交，社区会尽快受理。",
    "wo_accepted": "您反映的“{category}”（{number}）社区已受理。",
    "wo_dispatched": "“{category}”（{number}）已派给{team}处理，预计{due}前办结。",
    "wo_in_progress": "{team}已开始处理“{category}”（{number}）。",
    "wo_extended": "“{category}”（{number}）的办理时间延长到{due}：{note}",
    "wo_resolved": "“{category}”（{number}）已办结：{note}。解决了吗？满意吗？请在“我的随手拍”里告诉我们。",
    "wo_reopened": "“{category}”（{number}）将重新办理（重办），感谢您的反馈。",
    "wo_merged": "您反映的“{category}”（{number}）与工单{into}是同一个问题，已合并，之后的进展会一并通知您。",
    "wo_out_of_scope": "您反映的“{category}”（{number}）不属于社区受理范围，负责单位：{responsible}。{note}",
    "wo_called_back": "感谢您对“{category}”（{number}）的评价。",
}


# ---- writing ----

async def _post(recipients: Iterable[tuple[AppUser, str]], template: str, **params: str) -> int:
    """Store one delivered in-app message per recipient; `who` (how the elder is named to them) per row."""
    written = 0
    for user, who in recipients:
        await OutboundMessage.create(
            channel=APP_CHANNEL, recipient_cipher=user.phone_cipher, recipient_index=user.phone_index,
            template=template, body=APP_TEMPLATES[template].format(who=who, **params), status=IN_APP_STATUS,
        )
        written += 1
    return written


async def _safely(template: str, recipients: Iterable[tuple[AppUser, str]], **params: str) -> int:
    try:
        return await _post(recipients, template, **params)
    except Exception:  # a notice must never fail the certification or binding it reports
        log.exception("in-app notice not stored", extra={"template": template})
        return 0


async def deliver(*, recipients: Iterable[tuple[str, str]], template: str, link: str | None = None,
                  **params: str) -> int:
    """Plain-data entry for the domains above notify: (encrypted phone, phone index) pairs, a template,
    and the app screen the message is about (`link`, e.g. one case), where its button leads.

    The caller composed the parameters; nothing here knows what a work order is. Courtesy only:
    a failure is logged and never fails the step that it reports.
    """
    written = 0
    try:
        for phone_cipher, phone_index in dict.fromkeys(recipients):
            await OutboundMessage.create(
                channel=APP_CHANNEL, recipient_cipher=phone_cipher, recipient_index=phone_index,
                template=template, body=APP_TEMPLATES[template].format(**params), status=IN_APP_STATUS, link=link,
            )
            written += 1
    except Exception:
        log.exception("in-app notice not stored", extra={"template": template})
    return written


# ---- who reads it ----

async def _elder_users(resident_id: int) -> list[AppUser]:
    """The elder's own app account(s): the app users linked to the resident."""
    return await AppUser.filter(resident_id=resident_id, is_active=True).order_by("id")


async def _helper_of(attempt: Attempt | None, resident_id: int) -> AppUser | None:
    """The helper who started this attempt, while still an approved helper of the elder."""
    if attempt is None or attempt.actor_kind != "app":
        return None
    if not await HelperBinding.exists(helper_id=attempt.actor_id, resident_id=resident_id,
                                      status=BindingStatus.APPROVED):
        return None  # the elder's own account, or a helper no longer bound
    return await AppUser.get_or_none(id=attempt.actor_id, is_active=True)


async def _certification_readers(resident: Resident, attempt: Attempt | None) -> list[tuple[AppUser, str]]:
    readers: list[tuple[AppUser, str]] = [(user, "您") for user in await _elder_users(resident.id)]
    helper = await _helper_of(attempt, resident.id)
    if helper is not None and all(helper.id != user.id for user, _ in readers):
        readers.append((helper, f"{mask_name(resident.name)}老人"))
    return readers


async def _community_phone(community_id: int) -> str:
    community = await Community.get_or_none(id=community_id)
    return community.phone if community and community.phone else "社区服务电话"


def month_label(month: str, now: datetime | None = None) -> str:
    """"本月" for the current month (Beijing time), else "2026年4月"."""
    local = (now or datetime.now(UTC)).astimezone(LOCAL_TZ)
    if month == f"{local.year:04d}-{local.month:02d}":
        return "本月"
    year, number = month.split("-")
    return f"{year}年{int(number)}月"


def _reason(text: str) -> str:
    cleaned = (text or "").strip().rstrip("。.！!，,；;")
    return cleaned or "具体原因请联系社区"


# ---- certification ----

async def certification_passed(*, resident: Resident, period: Period, attempt: Attempt | None) -> int:
    """A certification was recorded: tell the elder, and the helper who did it; says so when staff approved."""
    readers = await _certification_readers(resident, attempt)
    reviewed = attempt is not None and attempt.decision == Decision.REVIEW
    return await _safely("cert_review_approved" if reviewed else "cert_passed", readers,
                         month=month_label(period.month))


async def attempt_decided(*, attempt: Attempt, resident: Resident, hint: str) -> int:
    """A session ended in review or failure: tell the elder and the helper (a pass is told by the record)."""
    if attempt.decision == Decision.PASS:
        return 0
    readers = await _certification_readers(resident, attempt)
    if attempt.decision == Decision.REVIEW:
        return await _safely("cert_review", readers)
    phone = await _community_phone(resident.community_id)  # type: ignore[attr-defined]
    return await _safely("cert_failed", readers, reason=_reason(hint), phone=phone)


async def review_rejected(*, attempt: Attempt, reason: str) -> int:
    """Staff rejected a reviewed attempt: the reason they wrote goes to the elder and the helper."""
    resident = await Resident.get(id=attempt.resident_id)  # type: ignore[attr-defined]
    readers = await _certification_readers(resident, attempt)
    phone = await _community_phone(resident.community_id)  # type: ignore[attr-defined]
    return await _safely("cert_review_rejected", readers, reason=_reason(reason), phone=phone)


# ---- helper bindings ----

def _relation(binding: HelperBinding) -> str:
    from backend.residents.bindings import RELATION_LABELS

    return RELATION_LABELS.get(binding.relation, binding.relation)


async def _helper(binding: HelperBinding) -> list[tuple[AppUser, str]]:
    helper = await AppUser.get_or_none(id=binding.helper_id, is_active=True)  # type: ignore[attr-defined]
    return [(helper, "")] if helper is not None else []


async def _elder(binding: HelperBinding) -> list[tuple[AppUser, str]]:
    return [(user, "") for user in await _elder_users(binding.resident_id)]  # type: ignore[attr-defined]


def _phone(masked: str) -> str:
    return f"手机 {masked}"


async def binding_requested(*, binding: HelperBinding, helper_phone_masked: str) -> int:
    """Someone scanned the elder's code and asked to help: the elder decides in the app."""
    return await _safely("binding_request", await _elder(binding), helper=_phone(helper_phone_masked),
                         relation=_relation(binding))


async def binding_decided(*, binding: HelperBinding, approved: bool, decided_by: str,
                          helper_phone_masked: str) -> int:
    """The helper learns the answer; when staff decided for the elder, the elder learns of a new helper too."""
    by_staff = decided_by.startswith("staff")
    if not approved:
        return await _safely("binding_rejected", await _helper(binding), relation=_relation(binding))
    resident = await Resident.get(id=binding.resident_id)  # type: ignore[attr-defined]
    elder = mask_name(resident.name)
    approval = f"社区已同意您成为{elder}老人的帮办人" if by_staff else f"{elder}老人已同意您成为TA的帮办人"
    written = await _safely("binding_approved", await _helper(binding), approval=approval)
    if by_staff:
        phone = await _community_phone(resident.community_id)  # type: ignore[attr-defined]
        written += await _safely("binding_approved_for_elder", await _elder(binding), helper=_phone(helper_phone_masked),
                                 relation=_relation(binding), phone=phone)
    return written


async def binding_revoked(*, binding: HelperBinding, was: BindingStatus, by: str, helper_phone_masked: str) -> int:
    """A binding (or a pending request) ended: each side that did not end it themself is told.

    `by` is "helper", "resident" or "staff:<id>". Ending a pending request is, for the helper,
    a refusal; the helper withdrawing it only tells the elder not to look for it any more.
    """
    relation = _relation(binding)
    written = 0
    if by != "helper":
        if was == BindingStatus.PENDING:
            written += await _safely("binding_rejected", await _helper(binding), relation=relation)
        else:
            elder = mask_name((await Resident.get(id=binding.resident_id)).name)  # type: ignore[attr-defined]
            ending = f"{elder}老人已解除与您的帮办绑定" if by == "resident" else f"社区已解除您与{elder}老人的帮办绑定"
            written += await _safely("binding_ended", await _helper(binding), ending=ending)
    if by != "resident":
        if was == BindingStatus.PENDING and by == "helper":
            written += await _safely("binding_withdrawn_for_elder", await _elder(binding),
                                     helper=_phone(helper_phone_masked), relation=relation)
        elif was == BindingStatus.APPROVED:
            helper = f"{_phone(helper_phone_masked)}（{relation}）"
            ending = f"{helper}已不再做您的帮办人" if by == "helper" else f"社区已解除{helper}的帮办人身份"
            written += await _safely("binding_ended_for_elder", await _elder(binding), ending=ending)
    return written
