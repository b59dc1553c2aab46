// Which pages each staff role sees. This shapes the menu only: the API enforces the same roles
// (backend/*/routes.py guards), so a hidden page is never the protection.
export const MANAGERS = ['community_staff', 'community_admin', 'district_admin', 'platform_admin']
export const ADMINS = ['community_admin', 'district_admin', 'platform_admin']
export const EXPORT_GENERATORS = ['community_staff', 'community_admin', 'platform_admin']
export const EXPORT_READERS = [...EXPORT_GENERATORS, 'district_admin', 'department_officer', 'auditor']
export const AUDIT_READERS = ['auditor', 'community_admin', 'district_admin', 'platform_admin']
export const TREND_READERS = [...MANAGERS, 'department_officer', 'auditor']
export const ALL_STAFF = [...MANAGERS, 'department_officer', 'auditor']

export const ROLE_LABELS = {
  community_staff: '社区工作人员',
  community_admin: '社区管理员',
  district_admin: '街道/区管理员',
  department_officer: '部门经办人',
  auditor: '审计员',
  platform_admin: '平台管理员',
}

export const MENU = [
  { path: '/month', title: '本月认证', icon: 'Calendar', roles: MANAGERS },
  { path: '/residents', title: '居民管理', icon: 'User', roles: MANAGERS },
  { path: '/import', title: '名单导入', icon: 'Upload', roles: MANAGERS },
  { path: '/review', title: '审核队列', icon: 'Checked', roles: MANAGERS },
  { path: '/home-visits', title: '上门核验', icon: 'House', roles: MANAGERS },
  { path: '/passive', title: '无感证据', icon: 'View', roles: MANAGERS },
  { path: '/exports', title: '部门导出', icon: 'Download', roles: EXPORT_READERS },
  { path: '/workorders', title: '工单调度', icon: 'Tickets', roles: MANAGERS },
  { path: '/workorders/map', title: '工单分布', icon: 'MapLocation', roles: MANAGERS },
  { path: '/workorders/figures', title: '工单月报', icon: 'DataAnalysis', roles: MANAGERS },
  { path: '/workorders/points', title: '随手拍点位', icon: 'Postcard', roles: MANAGERS },
  { path: '/trends', title: '趋势分析', icon: 'TrendCharts', roles: TREND_READERS },
  { path: '/chain', title: '存证与验证', icon: 'Link', roles: ALL_STAFF },
  { path: '/audit', title: '审计日志', icon: 'Document', roles: AUDIT_READERS },
]

export const menuFor = (role) => MENU.filter((item) => item.roles.includes(role))
export const homeFor = (role) => menuFor(role)[0]?.path || '/chain'
