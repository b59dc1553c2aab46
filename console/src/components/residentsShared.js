// Shared bits of the resident pages (居民管理, 居民详情, 人脸录入, 名单导入): labels, masking, the
// community list for staff above a community, and the two requests api.js does not cover as is
// (a POST that answers with a file, and an upload whose 422 answer carries a whole report).
import { ref } from 'vue'
import { ApiError, api, request } from '../api'
import { session } from '../store'

export const STATUS_LABELS = { active: '正常', suspended: '暂停发放', moved: '已迁出', deceased: '已故' }
export const STATUS_TAGS = { active: 'success', suspended: 'warning', moved: 'info', deceased: 'info' }
export const TIERS = ['80-89', '90-99', '100+']
export const TIER_LABELS = { '80-89': '80–89 岁', '90-99': '90–99 岁', '100+': '100 岁及以上' }
export const SEX_LABELS = { M: '男', F: '女' }
export const CONSENT_KINDS = { biometric: '人脸信息采集', data_processing: '个人信息处理' }
export const CONSENT_METHODS = { paper: '纸质签字', verbal_witnessed: '现场口头同意（工作人员见证）', in_app: '手机上同意' }
export const BINDING_STATUS = { pending: '待审核', approved: '已同意', revoked: '已解除/已拒绝' }
export const BINDING_TAGS = { pending: 'warning', approved: 'success', revoked: 'info' }
export const METHOD_LABELS = { self: '本人自助', helper: '家属代办', staff: '工作人员协助', home_visit: '上门核验', passive: '无感认证' }
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

export function formatTime(iso) {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Staff above a community (district, platform) must say which community a write goes to. */
export const needsCommunity = () => !session.user?.community_id

/** The communities the signed-in staff member sees (loaded once per page). */
export function useCommunities() {
  const communities = ref([])
  const load = async () => {
    try {
      communities.value = (await api.get('/api/communities')).items
    } catch {
      communities.value = []
    }
  }
  return { communities, load }
}

/** Hand a Response carrying a file to the browser as a download; returns the file name used. */
export async function saveResponse(response, fallbackName) {
  const disposition = response.headers.get('Content-Disposition') || ''
  const match = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(disposition)
  const name = match ? decodeURIComponent(match[1] || match[2]) : fallbackName
  const url = URL.createObjectURL(await response.blob())
  const link = document.createElement('a')
  link.href = url
  link.download = name
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
  return name
}

/** POST a JSON body and download the file the server answers with (e.g. the QR cards PDF). */
export async function postForDownload(path, body, fallbackName) {
  const response = await request('POST', path, { body, raw: true })
  return saveResponse(response, fallbackName)
}

/**
 * Upload a form to an endpoint that answers 422 with a full report (the roster import: every bad
 * row is listed next to `error`). Returns the report whether it is clean or not; throws ApiError
 * for every other failure. api.js keeps only `error` of a failed answer, hence this small fetch.
 */
export async function uploadForReport(path, form) {
  const send = async () => {
    const headers = session.access ? { Authorization: `Bearer ${session.access}` } : {}
    try {
      return await fetch(path, { method: 'POST', headers, body: form })
    } catch {
      throw new ApiError(0, 'network', '网络连接失败，请检查网络后重试')
    }
  }
  let response = await send()
  if (response.status === 401) {
    await request('GET', '/api/auth/me') // refreshes the tokens, or signs out and throws
    response = await send()
  }
  let data = null
  try {
    data = await response.json()
  } catch {
    data = null
  }
  if (response.ok || (response.status === 422 && data && Array.isArray(data.errors))) return data
  const error = (data && data.error) || {}
  throw new ApiError(response.status, error.code || 'http', error.message || `请求失败（${response.status}）`, error.details)
}

/**
 * v-row-test="'resident-row'": put a data-test attribute on every body row of the el-table it
 * sits on (el-table has no per-row attributes), kept up to date as rows change.
 */
export const vRowTest = {
  mounted(el, binding) {
    const tag = () => {
      for (const row of el.querySelectorAll('.el-table__body tr.el-table__row')) {
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
