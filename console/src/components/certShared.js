// Words and small helpers shared by the certification pages (本月认证, 趋势, 审核, 上门, 无感).
// Labels mirror the backend's (backend/certification/routes.py MONTH_LABELS). Method names, times and
// the row hook are shared with the other areas: ../shared/labels.js, ../shared/format.js, ../shared/rows.js.

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

export const METHOD_COLORS = {
  self: '#2563eb', helper: '#0891b2', staff: '#16a34a', home_visit: '#d97706', passive: '#7c3aed',
}

export const LIVENESS_ACTION_LABELS = {
  blink: '眨眼', turn_left: '向左转头', turn_right: '向右转头', open_mouth: '张嘴', nod: '点头',
}
