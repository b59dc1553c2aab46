// 随手拍 in plain words: where a case is on its way, each step of its history, when it should be done.

/** The main line a resident follows; the side paths are said in words on the case screen. */
export const STEPS = [
  { key: 'submitted', label: '已提交', words: '您的反映已送到社区' },
  { key: 'accepted', label: '已受理', words: '社区已经收下' },
  { key: 'dispatched', label: '已派单', words: '已经安排人去处理' },
  { key: 'in_progress', label: '处置中', words: '正在处理' },
  { key: 'resolved', label: '已办结', words: '处理完了，请您说说解决了没有' },
  { key: 'called_back', label: '已回访', words: '您已经评价过了' },
]

// where each state sits on that line (hand-offs inside the community are not the resident's worry)
const AT = {
  submitted: 0, accepted: 1, reopened: 1, dispatched: 2, returned: 2,
  in_progress: 3, extension_requested: 3, pending_check: 3, resolved: 4, called_back: 5,
}

/** The state as a resident should read it. */
export function stateWords(state) {
  return {
    submitted: '已提交，等社区受理',
    accepted: '社区已受理，正在安排',
    dispatched: '已派人处理',
    returned: '社区正在重新安排',
    in_progress: '正在处理',
    extension_requested: '正在处理',
    pending_check: '处理完了，社区正在检查',
    resolved: '已办结，请您评价',
    called_back: '已办结，已评价',
    reopened: '重新办理中',
    duplicate: '和别人反映的是同一件事，已合并',
    out_of_scope: '不归社区管，已告诉您该找谁',
  }[state] || '处理中'
}

/** Each main step with its mark in words: 已完成 / 现在在这一步 / 还没到 (never colour alone). */
export function stepMarks(state) {
  const at = AT[state]
  if (at === undefined) return []
  return STEPS.map((step, i) => {
    const done = i < at || state === 'called_back'
    const now = i === at && state !== 'called_back'
    return { ...step, done, now, mark: done ? '已完成' : now ? '现在在这一步' : '还没到' }
  })
}

const ACTIONS = {
  submit_report: '提交了反映',
  accept: '社区受理了',
  dispatch: '派人处理',
  start: '开始处理',
  approve_extension: '办理时间延长了',
  verify: '处理完毕，已办结',
  reopen: '没有解决，重新办理',
  callback: '回访评价',
  merge: '和另一件反映合并了',
  merged_in: '合并了别人反映的同一件事',
  out_of_scope: '不属于社区受理范围',
}

export function actionWords(action) {
  return ACTIONS[action] || '进展'
}

/** "12 月 10 日 18:00", as people say it. */
export function dayTime(iso) {
  const at = new Date(iso)
  if (Number.isNaN(at.getTime())) return ''
  return `${at.getMonth() + 1} 月 ${at.getDate()} 日 ${at.getHours()}:${String(at.getMinutes()).padStart(2, '0')}`
}

/** Where it is: the point's name, else the address. */
export function placeWords(place) {
  if (!place) return ''
  if (place.point) return place.point.name + (place.address ? `（${place.address}）` : '')
  return place.address || '没有写地点'
}
