// Plain words for what the API returns.

const METHODS = { self: '本人刷脸', helper: '家人帮助', staff: '工作人员协助', home_visit: '上门认证', passive: '无感认证' }

export function methodWords(method) {
  return METHODS[method] || '认证'
}

export function monthWords(month) {
  const [, m] = (month || '').split('-')
  return m ? `${Number(m)} 月` : '本月'
}

const SMALL = ['零', '一', '两', '三', '四', '五', '六', '七', '八', '九', '十']

/** "两条新消息" rather than a red dot with a number: read aloud and understood the same way. */
export function unreadWords(count) {
  if (!count) return '没有新消息'
  return `有${count <= 10 ? SMALL[count] : ` ${count} `}条新消息`
}

/** When a message came, as people say it: 今天 9:05, 昨天 18:30, 6 月 3 日 10:00, 2025 年 12 月 1 日. */
export function whenWords(iso, now = new Date()) {
  const at = new Date(iso)
  if (Number.isNaN(at.getTime())) return ''
  const time = `${at.getHours()}:${String(at.getMinutes()).padStart(2, '0')}`
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime()
  const days = Math.round((day(now) - day(at)) / 86400000)
  if (days === 0) return `今天 ${time}`
  if (days === 1) return `昨天 ${time}`
  if (at.getFullYear() !== now.getFullYear()) return `${at.getFullYear()} 年 ${at.getMonth() + 1} 月 ${at.getDate()} 日`
  return `${at.getMonth() + 1} 月 ${at.getDate()} 日 ${time}`
}

/** One sentence for this month: who, which month, what state, what to do. */
export function describeMonth(status, who = '您') {
  if (!status) return ''
  const month = monthWords(status.period && status.period.month)
  const due = status.period ? `${Number(status.period.month.split('-')[1])} 月 ${status.period.due_day} 日` : ''
  switch (status.status) {
    case 'certified': {
      const at = status.certification ? new Date(status.certification.certified_at) : null
      const when = at ? `（${at.getMonth() + 1} 月 ${at.getDate()} 日）` : ''
      return `${who}${month}已经认证好了${when}，补贴照常发放。`
    }
    case 'in_review':
      return `${who}${month}的认证已提交，正在由社区工作人员审核，请耐心等待。`
    case 'overdue':
      return `${who}${month}的认证已过期限，请尽快认证，或拨打社区电话。`
    case 'suspended':
      return `${who}的补贴已暂停发放，认证成功后会恢复。`
    case 'exempt':
      return `${who}${month}不需要认证。`
    default:
      return `${who}${month}还没有认证，请在 ${due} 前完成。`
  }
}

const REASONS = {
  'liveness.timeout': '时间到了，动作没有做完',
  'liveness.incomplete': '动作没有做完',
  'liveness.wrong_order': '动作顺序不对',
  'liveness.static': '画面一直不动，像是照片',
  'liveness.identity_changed': '中途换了人',
  'liveness.too_few_frames': '画面太少，网络可能不好',
  'liveness.timing': '画面时间不连续，网络可能不好',
  'liveness.spoof': '看起来像是照片或屏幕，不是本人在镜头前',
  'liveness.flat': '转头时画面像一张平的照片或屏幕',
  'liveness.no_face': '一直没有看到脸',
  'liveness.too_dark': '光线太暗，看不清脸',
  'liveness.too_bright': '光线太亮，看不清脸',
  'liveness.unsteady': '画面一直在晃，看不清脸',
  'liveness.too_far': '离得太远，看不清脸',
  'liveness.too_close': '离得太近，看不全脸',
  'liveness.match_reject': '和社区登记的照片对不上',
  'liveness.match_review': '需要社区工作人员再看一下',
  'liveness.antispoof_review': '需要社区工作人员再看一下',
  'liveness.multiple_faces': '画面里不止一个人',
  no_template: '第一次认证，需要社区工作人员审核',
  review: '需要社区工作人员再看一下',
  locked: '多次没有成功，请联系社区',
}

// most telling first: an elder hears one reason, not four
const PRIORITY = [
  'locked', 'liveness.spoof', 'liveness.flat', 'liveness.static', 'liveness.no_face', 'liveness.too_dark',
  'liveness.too_bright', 'liveness.unsteady', 'liveness.too_far', 'liveness.too_close', 'liveness.multiple_faces', 'liveness.identity_changed',
  'liveness.match_reject', 'liveness.wrong_order', 'liveness.timing', 'liveness.too_few_frames', 'liveness.timeout',
  'liveness.incomplete',
]

function ranked(reasons = []) {
  const rank = (r) => (PRIORITY.includes(r) ? PRIORITY.indexOf(r) : PRIORITY.length)
  return [...reasons].sort((a, b) => rank(a) - rank(b))
}

/** The reasons in plain words, the most telling first. */
export function reasonWords(reasons = []) {
  return [...new Set(ranked(reasons).map((r) => REASONS[r] || '').filter(Boolean))]
}

// what to do, naming only what is on the result screen (再试一次, 拨打社区电话)
const RETRY = '可以点“再试一次”'
const ADVICE = {
  locked: '请拨打社区电话，工作人员可以帮忙或上门认证。',
  'liveness.spoof': `请本人正对镜头，不要用照片、视频或屏幕。${RETRY}。`,
  'liveness.flat': `请本人正对镜头，不要用照片、视频或屏幕。${RETRY}。`,
  'liveness.static': `请本人正对镜头，不要用照片、视频或屏幕。${RETRY}。`,
  'liveness.no_face': `请把脸放进框里，${RETRY}。`,
  'liveness.too_dark': `请到亮一点的地方，${RETRY}。`,
  'liveness.too_bright': `请避开强光，${RETRY}。`,
  'liveness.unsteady': `请把手机放稳，${RETRY}。`,
  'liveness.too_far': `请靠近一点，${RETRY}。`,
  'liveness.too_close': `请离远一点，${RETRY}。`,
  'liveness.multiple_faces': `请让画面里只有老人一个人，${RETRY}。`,
  'liveness.identity_changed': `请同一个人从头做到尾，${RETRY}。`,
  'liveness.match_reject': '请本人认证；如果您最近样子变化大，请拨打社区电话重新登记。',
  'liveness.wrong_order': `请按提示一个一个做，${RETRY}。`,
  'liveness.timing': `请到信号好的地方再试，${RETRY}。`,
  'liveness.too_few_frames': `请到信号好的地方再试，${RETRY}。`,
  'liveness.timeout': `没关系，慢慢来，${RETRY}。`,
  'liveness.incomplete': `没关系，慢慢来，${RETRY}。`,
}

/** What to do about the most telling reason. */
export function adviceFor(reasons = [], fallback = '') {
  const first = ranked(reasons).find((r) => ADVICE[r])
  return first ? ADVICE[first] : fallback || `没关系，${RETRY}。`
}
