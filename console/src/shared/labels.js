// Words used by more than one area of the console. They mirror the backend's
// (backend/exports/service.py METHOD_ZH), so the console, the exports and the phone app agree.

export const METHOD_ORDER = ['self', 'helper', 'staff', 'home_visit', 'passive']

export const METHOD_LABELS = {
  self: '本人认证',
  helper: '亲友代认证',
  staff: '工作人员协助',
  home_visit: '上门核验',
  passive: '无感认证',
}
