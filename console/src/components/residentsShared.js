// Words and masking shared by the resident pages (居民管理, 居民详情, 人脸录入, 名单导入). What other
// areas use too (times, communities, certification methods, row hooks) is in ../shared/.

export const STATUS_LABELS = { active: '正常', suspended: '暂停发放', moved: '已迁出', deceased: '已故' }
export const STATUS_TAGS = { active: 'success', suspended: 'warning', moved: 'info', deceased: 'info' }
export const TIERS = ['80-89', '90-99', '100+']
export const TIER_LABELS = { '80-89': '80–89 岁', '90-99': '90–99 岁', '100+': '100 岁及以上' }
export const SEX_LABELS = { M: '男', F: '女' }
export const CONSENT_KINDS = { biometric: '人脸信息采集', data_processing: '个人信息处理' }
export const CONSENT_METHODS = { paper: '纸质签字', verbal_witnessed: '现场口头同意（工作人员见证）', in_app: '手机上同意' }
export const BINDING_STATUS = { pending: '待审核', approved: '已同意', revoked: '已解除/已拒绝' }
export const BINDING_TAGS = { pending: 'warning', approved: 'success', revoked: 'info' }
/** The version of the biometric consent text shown on the enrolment page (kept with each record). */
export const BIOMETRIC_CONSENT_VERSION = 'v1'

export function maskPhone(phone) {
  if (!phone) return ''
  return phone.length > 7 ? `${phone.slice(0, 3)}****${phone.slice(-4)}` : '*'.repeat(phone.length)
}

export function maskId(number) {
  if (!number) return ''
  return number.length > 8 ? `${number.slice(0, 4)}${'*'.repeat(number.length - 8)}${number.slice(-4)}` : '*'.repeat(number.length)
}
