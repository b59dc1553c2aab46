"""The work-order state machine, declared as data: every allowed move, who may make it, what it needs.

Nothing here touches the database or HTTP, so the rules are testable in microseconds and readable
in one screen. `service.transition` looks a move up in `MOVES`, checks the caller's parties and the
move's needs, and appends the history row; it never decides anything the table does not say.

The main line follows the Chinese 12345 / 网格化 workflow
(已提交 → 已受理 → 已派单 → 处置中 → 待核查 → 已办结 → 已回访); the side paths are 退单 (the handler
hands a case back, the dispatcher decides: 改派 or 驳回退单), 延期 (the handler asks, an approver
decides), 重复 (merged into another case), 不属于受理范围 (naming who is responsible) and 重办 (an
unsatisfied call-back reopens the case for a new round). Open311 sees only open or closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    SUBMITTED = "submitted"  # 已提交
    ACCEPTED = "accepted"  # 已受理（签收）
    DISPATCHED = "dispatched"  # 已派单
    IN_PROGRESS = "in_progress"  # 处置中
    PENDING_CHECK = "pending_check"  # 待核查
    RESOLVED = "resolved"  # 已办结
    CALLED_BACK = "called_back"  # 已回访
    RETURNED = "returned"  # 退单（待调度员决定）
    EXTENSION_REQUESTED = "extension_requested"  # 延期申请中
    DUPLICATE = "duplicate"  # 重复（已合并）
    OUT_OF_SCOPE = "out_of_scope"  # 不属于受理范围
    REOPENED = "reopened"  # 重办


STATE_LABELS: dict[State, str] = {
    State.SUBMITTED: "已提交",
    State.ACCEPTED: "已受理",
    State.DISPATCHED: "已派单",
    State.IN_PROGRESS: "处置中",
    State.PENDING_CHECK: "待核查",
    State.RESOLVED: "已办结",
    State.CALLED_BACK: "已回访",
    State.RETURNED: "退单待处理",
    State.EXTENSION_REQUESTED: "延期待审批",
    State.DUPLICATE: "重复（已合并）",
    State.OUT_OF_SCOPE: "不属于受理范围",
    State.REOPENED: "重办",
}

# Open311 GeoReport v2 knows two statuses. 已办结 is closed (a reopened case is open again).
CLOSED_STATES = frozenset({State.RESOLVED, State.CALLED_BACK, State.DUPLICATE, State.OUT_OF_SCOPE})
FINAL_STATES = frozenset({State.CALLED_BACK, State.DUPLICATE, State.OUT_OF_SCOPE})
# the deadline clock runs in these; it stops when the case is resolved or closed
CLOCK_STATES = frozenset(State) - CLOSED_STATES
# who holds the clock: the handler team while it works the case, otherwise the dispatcher
HANDLER_HOLDS = frozenset({State.DISPATCHED, State.IN_PROGRESS, State.EXTENSION_REQUESTED})


def open311_status(state: State | str) -> str:
    """`open` or `closed`, the two statuses of GeoReport v2."""
    return "closed" if State(state) in CLOSED_STATES else "open"


def clock_holder(state: State | str) -> str | None:
    """"handler" or "dispatcher" while the clock runs; None once it has stopped."""
    state = State(state)
    if state not in CLOCK_STATES:
        return None
    return "handler" if state in HANDLER_HOLDS else "dispatcher"


class Party(StrEnum):
    """How the caller stands to one case (a person can be several at once)."""

    DISPATCHER = "dispatcher"  # staff of the case's community: accept, dispatch, check, decide
    HANDLER = "handler"  # a member of the team the case is dispatched to
    APPROVER = "approver"  # a community admin (or above): approves extensions
    REPORTER = "reporter"  # the app user who reported it (answers the call-back)
    SYSTEM = "system"  # the background worker and other domains' events


class Need(StrEnum):
    """What a move needs besides its note (every move needs a note)."""

    TEAM = "team"  # a handler team to dispatch to
    INTO = "into"  # the case a duplicate is merged into
    RESPONSIBLE = "responsible"  # who is responsible when it is not ours
    EXTENSION = "extension"  # how many more hours
    AFTER_PHOTO = "after_photo"  # 整改后 photo by the handler
    CLOSE_FIELDS = "close_fields"  # the category's fields filled at closing (e.g. an outreach's outcome)
    SATISFACTION = "satisfaction"  # satisfied or not


@dataclass(frozen=True)
class Move:
    action: str
    label: str
    sources: frozenset[State]
    target: State
    parties: frozenset[Party]
    needs: frozenset[Need] = frozenset()


def _move(action: str, label: str, sources: set[State], target: State, parties: set[Party],
          needs: set[Need] | None = None) -> Move:
    return Move(action, label, frozenset(sources), target, frozenset(parties), frozenset(needs or ()))


S, P, N = State, Party, Need
MOVES: dict[str, Move] = {m.action: m for m in (
    _move("accept", "签收受理", {S.SUBMITTED}, S.ACCEPTED, {P.DISPATCHER, P.SYSTEM}),
    _move("dispatch", "派单", {S.ACCEPTED, S.REOPENED}, S.DISPATCHED, {P.DISPATCHER, P.SYSTEM}, {N.TEAM}),
    _move("start", "接单处置", {S.DISPATCHED}, S.IN_PROGRESS, {P.HANDLER}),
    _move("return", "退单", {S.DISPATCHED, S.IN_PROGRESS}, S.RETURNED, {P.HANDLER}),
    _move("reassign", "改派", {S.RETURNED, S.DISPATCHED, S.IN_PROGRESS}, S.DISPATCHED, {P.DISPATCHER}, {N.TEAM}),
    _move("reject_return", "驳回退单", {S.RETURNED}, S.DISPATCHED, {P.DISPATCHER}),
    _move("request_extension", "申请延期", {S.IN_PROGRESS}, S.EXTENSION_REQUESTED, {P.HANDLER}, {N.EXTENSION}),
    _move("approve_extension", "批准延期", {S.EXTENSION_REQUESTED}, S.IN_PROGRESS, {P.APPROVER}),
    _move("deny_extension", "不批准延期", {S.EXTENSION_REQUESTED}, S.IN_PROGRESS, {P.APPROVER}),
    _move("submit", "处置完毕，提交核查", {S.IN_PROGRESS}, S.PENDING_CHECK, {P.HANDLER},
          {N.AFTER_PHOTO, N.CLOSE_FIELDS}),
    _move("verify", "核查通过，办结", {S.PENDING_CHECK}, S.RESOLVED, {P.DISPATCHER}),
    _move("send_back", "核查不通过，退回处置", {S.PENDING_CHECK}, S.IN_PROGRESS, {P.DISPATCHER}),
    _move("callback", "回访（已解决）", {S.RESOLVED}, S.CALLED_BACK, {P.REPORTER, P.DISPATCHER}, {N.SATISFACTION}),
    _move("reopen", "回访未解决，重办", {S.RESOLVED}, S.REOPENED, {P.REPORTER, P.DISPATCHER}),
    _move("merge", "重复，合并到原工单", {S.SUBMITTED, S.ACCEPTED, S.DISPATCHED, S.RETURNED, S.REOPENED},
          S.DUPLICATE, {P.DISPATCHER}, {N.INTO}),
    _move("out_of_scope", "不属于受理范围", {S.SUBMITTED, S.ACCEPTED, S.RETURNED, S.REOPENED}, S.OUT_OF_SCOPE,
          {P.DISPATCHER}, {N.RESPONSIBLE}),
)}


# history lines residents (and Open311) see: the steps they are told of. Hand-offs inside the
# community (退单, 改派, extension requests, checks sent back) and the clock's alarms stay internal.
PUBLIC_ACTIONS = frozenset({"submit_report", "accept", "dispatch", "start", "approve_extension", "verify", "reopen",
                            "callback", "merge", "merged_in", "out_of_scope"})


class MoveRefused(Exception):
    """A move the table does not allow: unknown, from this state, or by these parties."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_move(action: str, state: State | str, parties: set[Party] | frozenset[Party]) -> Move:
    """The move if `parties` may make `action` from `state`; MoveRefused (with a Chinese reason) otherwise."""
    move = MOVES.get(action)
    if move is None:
        raise MoveRefused("workorder.unknown_action", f"没有“{action}”这个操作")
    state = State(state)
    if state not in move.sources:
        raise MoveRefused("workorder.wrong_state",
                          f"工单当前为“{STATE_LABELS[state]}”，不能{move.label}")
    if not move.parties & set(parties):
        raise MoveRefused("workorder.not_your_move", f"您不能对这张工单执行“{move.label}”")
    return move


def allowed_actions(state: State | str, parties: set[Party] | frozenset[Party]) -> list[str]:
    """The actions these parties may take now (what the console and app offer as buttons)."""
    state = State(state)
    return [m.action for m in MOVES.values() if state in m.sources and m.parties & set(parties)]
