// Words of the work-order pages. They mirror backend/workorders/states.py (labels of states and moves)
// and catalog.py; the API sends the state's label with each case, the moves are named here.

export const STATE_LABELS = {
  submitted: '已提交', accepted: '已受理', dispatched: '已派单', in_progress: '处置中', pending_check: '待核查',
  resolved: '已办结', called_back: '已回访', returned: '退单待处理', extension_requested: '延期待审批',
  duplicate: '重复（已合并）', out_of_scope: '不属于受理范围', reopened: '重办',
}

// tag colour per state; the tag always carries the words too
export const STATE_TAG = {
  submitted: 'danger', accepted: 'warning', dispatched: 'primary', in_progress: 'primary', pending_check: 'warning',
  resolved: 'success', called_back: 'success', returned: 'danger', extension_requested: 'warning', duplicate: 'info',
  out_of_scope: 'info', reopened: 'danger',
}

export const SOURCE_LABELS = {
  resident: '居民随手拍', staff: '工作人员登记', device: '设备告警', health: '健康异常', outreach: '认证外联',
  partner: '城市平台（Open311）',
}

// each move: its button, what it asks for, and whether it is the usual next step (shown first, filled)
export const MOVES = {
  accept: { label: '签收受理', main: true, hint: '确认收到，开始计时响应' },
  dispatch: { label: '派单', main: true, needs: ['team'], hint: '派给处置队伍（可指定承办人）' },
  start: { label: '接单处置', main: true, hint: '承办队伍开始处理' },
  return: { label: '退单', hint: '不属于本队伍或无法处理：写明原因，交回调度员（时限不重新计算）' },
  reassign: { label: '改派', needs: ['team'], hint: '改派给另一支队伍（时限不重新计算）' },
  reject_return: { label: '驳回退单', hint: '退单理由不成立，仍由原队伍处理' },
  request_extension: { label: '申请延期', needs: ['hours'], hint: '由另一位管理员审批' },
  approve_extension: { label: '批准延期', main: true, hint: '延期申请人不能自己审批' },
  deny_extension: { label: '不批准延期' },
  submit: { label: '处置完毕，提交核查', main: true, needs: ['after_photo', 'close_fields'], hint: '上传整改后的照片' },
  verify: { label: '核查通过，办结', main: true, hint: '办结后系统请反映人回访评价' },
  send_back: { label: '核查不通过，退回处置' },
  callback: { label: '登记电话回访', needs: ['satisfied'], hint: '反映人不用手机时，工作人员电话回访后登记' },
  reopen: { label: '回访未解决，重办', hint: '开始新一轮办理，重新计时' },
  merge: { label: '重复，合并到原工单', needs: ['into'], hint: '反映人和关注人转为关注原工单' },
  out_of_scope: { label: '不属于受理范围', needs: ['responsible'], hint: '写明负责的单位，告知反映人' },
}

export const CLOCK_LABELS = { on_time: '时限内', due_soon: '即将超时', overdue: '已超时', stopped: '已停止计时' }
export const CLOCK_TAG = { on_time: 'success', due_soon: 'warning', overdue: 'danger', stopped: 'info' }

export const POINT_KINDS = {
  lamp_post: '路灯杆', gate: '出入口', charging_shed: '充电棚', stair_hall: '楼道', other: '公共点位',
}

export const number = (id) => `GD${String(id).padStart(6, '0')}`

/** "还剩 5 小时" / "已超时 3 小时" / "已办结": the clock in words. */
export function clockWords(clock, now = Date.now()) {
  if (!clock || clock.remaining_s === null || clock.remaining_s === undefined) return '已停止计时'
  const due = new Date(clock.due_at).getTime()
  const seconds = Math.round((due - now) / 1000)
  const span = Math.abs(seconds)
  const text = span >= 86400 ? `${Math.floor(span / 86400)} 天 ${Math.floor((span % 86400) / 3600)} 小时`
    : span >= 3600 ? `${Math.floor(span / 3600)} 小时` : `${Math.max(1, Math.floor(span / 60))} 分钟`
  return seconds >= 0 ? `还剩 ${text}` : `已超时 ${text}`
}

/** Where a case is: the point, else the address (and the grid when known). */
export function placeText(place) {
  if (!place) return '—'
  const where = place.point ? `${place.point.name}（${place.point.code}）` : (place.address || '—')
  return place.grid ? `${where} · ${place.grid}` : where
}
