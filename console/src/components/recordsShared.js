// Words shared by the records pages (部门导出, 存证与验证, 审计日志): department names, what each
// verification check means, audit action labels. Codes mirror the backend's
// (backend/credentials/verify.py CHECKS and backend/credentials/errors.py, backend/*/routes.py actions).
import { ref } from 'vue'
import { api } from '../api'

/** Departments by code and by id (GET /api/departments, every staff role may read it). */
export function useDepartments() {
  const departments = ref([])
  const load = async () => {
    try {
      departments.value = (await api.get('/api/departments')).items || []
    } catch {
      departments.value = [] // names fall back to codes
    }
  }
  const nameOf = (code) => departments.value.find((d) => d.code === code)?.name || code || '—'
  const nameById = (id) => departments.value.find((d) => d.id === id)?.name || ''
  return { departments, load, nameOf, nameById }
}

/** A long hash shortened for a table cell; the full value goes in a title attribute. */
export const shortHash = (value, keep = 12) => (value && value.length > keep * 2 ? `${value.slice(0, keep)}…${value.slice(-6)}` : value || '—')

// --- credential verification (POST /credentials/verify) -----------------------------------------

export const CHECK_LABELS = {
  format: '凭证格式',
  issuer_key: '签发者公钥',
  signature: '数字签名',
  bundle_hash: '数据包哈希',
  status: '凭证状态（未撤销、未暂停）',
  checkpoint: '存证链检查点（日志签名）',
  witness_quorum: '部门见证人联署（法定人数）',
  inclusion: '上链包含证明',
  bundle_signature: '数据包签名',
  bundle_period: '凭证月份与数据包一致',
  bundle_complete: '数据包完整（行数、凭证数）',
  xlsx_hash: '名单文件哈希',
  xlsx_rows: '名单内容与数据包一致',
}

const PASSED = {
  format: '是有效的高龄津贴生存认证凭证（W3C VC 2.0）',
  issuer_key: '签名所用的公钥属于签发社区',
  signature: '签名有效，凭证内容签发后没有被改动',
  bundle_hash: '数据包正是清单所列的文件',
  status: '凭证既未被撤销，也未被暂停',
  checkpoint: '检查点由存证链的日志密钥签名',
  witness_quorum: '足够多的部门见证人联合签署了该检查点',
  inclusion: '凭证的哈希确实记录在存证链中',
  bundle_signature: '数据包由签发社区整体签名，签名后没有被改动（月份、行、凭证都在签名内）',
  bundle_period: '每份凭证都属于数据包所写的月份',
  bundle_complete: '签名中的行数和凭证数与数据包中的凭证一一对应，没有被删减',
  xlsx_hash: '名单文件正是导出时生成的那一份',
  xlsx_rows: '名单中每一行的状态、方式、时间和凭证编号与签名数据包一致',
}

const FAILED = {
  MalformedCredential: '不是本系统签发的凭证格式，或内容不完整',
  MalformedProof: '签名部分格式不正确',
  UnsupportedCryptosuite: '签名算法不受支持',
  ProofContextMismatch: '签名与凭证的上下文不一致',
  SignatureMismatch: '签名与内容不符：凭证在签发后被改动过，或不是该社区签发的',
  IssuerKeyUnknown: '找不到签发者的公钥：签发者不是本系统已知的社区，或密钥已作废',
  MalformedMultikey: '签发者公钥格式不正确',
  StatusListInvalid: '无法核对凭证状态：状态列表缺失或签名无效',
  CredentialRevoked: '该凭证已被撤销，不能再作为认证依据',
  CredentialSuspended: '该凭证已被暂停使用',
  AnchorMissing: '没有上链证明',
  AnchorMismatch: '上链证明与这份凭证对不上：凭证或证明被改动过',
  CheckpointInvalid: '检查点的签名无效，不是存证链签发的',
  WitnessQuorumFailed: '见证人联署不足或联合签名无效',
}

const SKIPPED = [
  ['not anchored yet', '凭证尚未上链（签发后通常几分钟内完成）'],
  ['no inclusion proof', '没有可核对的上链证明'],
  ['no chain trust roots', '本系统未配置存证链信任根，无法核对上链证明'],
  ['issuer key unknown', '签发者公钥未知，无法核对签名'],
  ['no status lists', '无法取得状态列表，未核对撤销/暂停状态'],
  ['checkpoint failed', '检查点未通过，后续检查未进行'],
  ['witness quorum failed', '见证人联署未通过，后续检查未进行'],
]

// The signed export manifest (POST /api/exports/verify) has the same checks, about a manifest.
const MANIFEST_LABELS = { format: '清单格式', signature: '清单签名', inclusion: '清单上链包含证明' }
const MANIFEST_PASSED = {
  format: '是本系统的导出清单（zhilian-export-manifest/v1）',
  signature: '清单由签发社区签名，签名后没有被改动',
  checkpoint: '检查点由存证链的日志密钥签名',
  inclusion: '清单的哈希确实记录在存证链中',
}
const MANIFEST_FAILED = {
  MalformedCredential: '不是本系统的导出清单格式，或内容不完整',
  SignatureMismatch: '清单签名与内容不符：清单被改动过，或不是该社区签发的',
  AnchorMismatch: '上链证明与这份清单对不上：清单或证明被改动过',
  AnchorMissing: '清单没有上链证明（导出后通常几分钟内上链）',
}
// By check name first: bundle_hash reports AnchorMismatch, which means something else for it.
const FAILED_BY_CHECK = {
  bundle_hash: '数据包与清单所列的文件不一致：数据包被改动过，或清单属于另一份导出',
  bundle_signature: '数据包没有有效的社区签名：内容（如月份、凭证）被改动或删减过，或是没有签名的旧格式且未提供清单',
  bundle_period: '有凭证不属于数据包所写的月份',
  bundle_complete: '数据包中的凭证与签名的行数、凭证数对不上：有凭证被删减或添加',
  xlsx_hash: '名单文件不是导出时生成的原件（被改动或另存过）',
  xlsx_rows: '名单中有行与签名数据包不一致',
}

/** One check of a verification report in words: { label, verdict, tag, explanation, detail }.
 *  `kind` is 'credential' (POST /credentials/verify) or 'manifest' (an export's signed manifest). */
export function describeCheck(check, kind = 'credential') {
  const manifest = kind === 'manifest'
  const label = (manifest && MANIFEST_LABELS[check.name]) || CHECK_LABELS[check.name] || check.name
  if (check.ok === true) {
    const explanation = (manifest && MANIFEST_PASSED[check.name]) || PASSED[check.name] || '通过'
    return { label, verdict: '通过', tag: 'success', explanation, detail: check.message }
  }
  if (check.ok === false) {
    const explanation = FAILED_BY_CHECK[check.name] || (manifest && MANIFEST_FAILED[check.error]) || FAILED[check.error] || '未通过'
    return { label, verdict: '未通过', tag: 'danger', explanation, detail: check.message }
  }
  const skipped = SKIPPED.find(([key]) => (check.message || '').includes(key))
  return { label, verdict: '未检查', tag: 'info', explanation: skipped ? skipped[1] : '未进行此项检查', detail: check.message }
}

// --- audit trail --------------------------------------------------------------------------------

export const ACTION_LABELS = {
  'auth.login': '登录', 'auth.login_failed': '登录失败', 'auth.app_login': '手机端登录', 'auth.totp_enabled': '启用两步验证',
  'audit.verify': '审计完整性校验',
  'resident.create': '新增居民', 'resident.read': '查看居民', 'resident.update': '修改居民', 'resident.delete': '删除居民',
  'resident.list': '查询居民名单', 'resident.helpers': '查看居民的帮办人',
  'resident.moves': '查看跨社区重复登记', 'resident.move_resolve': '处理居民迁移', 'resident.moved_out': '居民已迁出',
  'roster.dry_run': '名单导入（预检）', 'roster.commit': '名单导入',
  'consent.record': '登记同意', 'consent.revoke': '撤回同意', 'face.enrol': '人脸录入',
  'certify.start': '开始认证', 'certify.pass': '认证通过', 'certify.fail': '认证未通过', 'certify.review': '认证转人工审核',
  'review.list': '查看审核队列', 'review.approve': '审核通过', 'review.reject': '审核驳回', 'review.view_frame': '查看认证照片',
  'visit.list': '查看上门核验', 'visit.record': '登记上门核验', 'visit.attest': '上门核验确认', 'visit.view_photo': '查看上门照片',
  'passive.list': '查看无感证据', 'passive.confirm': '确认无感认证', 'passive.sighting': '设备识别记录',
  'device.register': '登记设备',
  'period.open': '开启认证期', 'period.close': '关闭认证期', 'period.reopen': '重新开启认证期', 'period.exempt': '设为免于认证', 'period.board': '查看本月认证',
  'reminders.send': '发送提醒',
  'qr.cards': '打印二维码卡片', 'qr.read': '查看二维码', 'qr.rotate': '更换二维码', 'qr.scan': '扫描二维码', 'qr.scan_refused': '二维码扫描被拒',
  'credential.revocation': '撤销/恢复凭证', 'credential.suspension': '暂停/恢复凭证', 'credential.sd_jwt': '生成选择性披露凭证',
  'export.create': '生成部门导出', 'export.download': '下载导出文件', 'export.verify': '整包核验导出',
  'oauth.client_created': '登记第三方应用', 'oauth.consent_granted': '授权第三方应用', 'oauth.consent_revoked': '撤回第三方授权',
}

export const TARGET_LABELS = {
  resident: '居民', staff: '工作人员', app_user: '手机用户', community: '社区', period: '认证期', attempt: '认证尝试',
  credential: '凭证', export: '导出', helper_binding: '帮办关系', home_visit: '上门核验', device: '设备', qr: '二维码',
  oauth_client: '第三方应用', oauth_grant: '第三方授权',
}

export const ACTOR_LABELS = { staff: '工作人员', app: '手机用户', system: '系统', device: '设备', anonymous: '匿名' }
