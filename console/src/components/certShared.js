// Words and small helpers shared by the certification pages (本月认证, 趋势, 审核, 上门, 无感).
// Labels mirror the backend's (backend/certification/routes.py MONTH_LABELS, exports METHOD_ZH).

export const STATUS_ORDER = ['pending', 'certified', 'in_review', 'overdue', 'suspended', 'exempt']

export const STATUS_LABELS = {
  pending: '待认证',
  certified: '已认证',
  in_review: '审核中',
  overdue: '已逾期',
  suspended: '已暂停发放',
  exempt: '免于认证',
}

// Element Plus tag types: colour is a second signal, the label always says it in words.
export const STATUS_TAGS = {
  pending: 'info', certified: 'success', in_review: 'warning', overdue: 'danger', suspended: 'danger', exempt: '',
}

export const STATUS_COLORS = {
  pending: '#64748b', certified: '#16a34a', in_review: '#d97706', overdue: '#dc2626', suspended: '#7f1d1d',
  exempt: '#7c3aed',
}

export const METHOD_ORDER = ['self', 'helper', 'staff', 'home_visit', 'passive']

export const METHOD_LABELS = {
  self: '本人认证',
  helper: '亲友代认证',
  staff: '工作人员协助',
  home_visit: '上门核验',
  passive: '无感认证',
}

export const METHOD_COLORS = {
  self: '#2563eb', helper: '#0891b2', staff: '#16a34a', home_visit: '#d97706', passive: '#7c3aed',
}

export const ACTION_LABELS = {
  blink: '眨眼', turn_left: '向左转头', turn_right: '向右转头', open_mouth: '张嘴', nod: '点头',
}

/** "2026-11-03 14:05" in the browser's local time, or "—". */
export function formatTime(iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** "2026-11" → "2026年11月". */
export function formatMonth(month) {
  if (!month) return ''
  const [year, mon] = month.split('-')
  return `${year}年${Number(mon)}月`
}

export function percent(rate, digits = 1) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(digits)}%`
}

/**
 * v-row-test="'board-row'" on an <el-table>: puts data-test on every body row, so a browser test can
 * find a row (Element Plus offers row classes but no row attributes). Follows the table's re-renders.
 */
export const vRowTest = {
  mounted(el, binding) {
    const tag = () => {
      for (const row of el.querySelectorAll('tbody tr.el-table__row')) {
        if (row.getAttribute('data-test') !== binding.value) row.setAttribute('data-test', binding.value)
      }
    }
    tag()
    el._rowTestObserver = new MutationObserver(tag)
    el._rowTestObserver.observe(el, { childList: true, subtree: true })
  },
  unmounted(el) {
    el._rowTestObserver?.disconnect()
  },
}

/** The message of an error from api.js (ApiError carries the server's words). */
export function messageOf(error, fallback = '操作失败，请稍后重试') {
  return (error && error.message) || fallback
}
