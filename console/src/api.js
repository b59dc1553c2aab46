// Same-origin JSON API client for the console: bearer token, one shared refresh on 401, errors as ApiError
// carrying the server's {"error": {"code", "message"}} and the whole JSON answer (`body`): some 4xx
// answers carry more than `error`, e.g. the roster import's 422 lists every bad row next to it.
import { session, signOut } from './store'

export class ApiError extends Error {
  constructor(status, code, message, details, body = null) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.body = body
  }
}

/** The message of an error from api.js (ApiError carries the server's words), or a fallback. */
export function messageOf(error, fallback = '操作失败，请稍后重试') {
  return (error && error.message) || fallback
}

/** A fresh Idempotency-Key: one per user action, so the server does a create once however often it is sent. */
export function idempotencyKey() {
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes) // unlike crypto.randomUUID, also on plain-http intranet hosts
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

async function send(method, path, { body, form, auth = true, key } = {}) {
  const headers = {}
  if (key) headers['Idempotency-Key'] = key
  let payload
  if (form !== undefined) payload = form
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  if (auth && session.access) headers.Authorization = `Bearer ${session.access}`
  try {
    return await fetch(path, { method, headers, body: payload })
  } catch {
    throw new ApiError(0, 'network', '网络连接失败，请检查网络后重试')
  }
}

async function rotateTokens() {
  if (!session.refresh) return false
  const response = await send('POST', '/api/auth/refresh', { body: { refresh_token: session.refresh }, auth: false })
  if (!response.ok) return false
  const pair = await response.json()
  session.access = pair.access_token
  session.refresh = pair.refresh_token || session.refresh
  return true
}

// One refresh in flight at a time. A page fires several requests at once; when the access token has
// expired they all get a 401 together, and each presenting the same refresh token would look like a
// stolen token being replayed (the server then ends the whole sign-in). They share this one instead.
let refreshing = null

function refreshTokens() {
  if (!refreshing) refreshing = rotateTokens().finally(() => { refreshing = null })
  return refreshing
}

async function errorOf(response) {
  let data = null
  try {
    data = await response.json()
  } catch {
    data = null
  }
  const error = (data && data.error) || {}
  const message = error.message || `请求失败（${response.status}）`
  return new ApiError(response.status, error.code || 'http', message, error.details, data)
}

/** Send a request; `raw` returns the Response (for files), otherwise the parsed JSON. */
export async function request(method, path, options = {}) {
  const sentWith = session.access
  // one key per call: the resend after a token refresh is the same action, so it cannot create twice
  if (method === 'POST' && options.auth !== false && !options.key) options = { ...options, key: idempotencyKey() }
  let response = await send(method, path, options)
  // a refresh that finished while this request was out already gave a new token: use it, do not rotate again
  if (response.status === 401 && options.auth !== false
      && ((session.access && session.access !== sentWith) || (await refreshTokens()))) {
    response = await send(method, path, options)
  }
  if (response.status === 401 && options.auth !== false) {
    signOut()
    window.location.hash = '#/login'
    throw new ApiError(401, 'auth.expired', '登录已过期，请重新登录')
  }
  if (!response.ok) throw await errorOf(response)
  if (options.raw) return response
  return response.status === 204 ? null : response.json()
}

function withQuery(path, query) {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value)
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

/** Hand a Response carrying a file to the browser as a download; returns the file name used. */
async function save(response, fallbackName) {
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

/** Fetch a file with the bearer token and hand it to the browser as a download. */
const download = async (path, fallbackName) => save(await request('GET', path, { raw: true }), fallbackName)

/** POST a JSON body and download the file the server answers with (e.g. the QR cards PDF). */
const postDownload = async (path, body, fallbackName) => save(await request('POST', path, { body, raw: true }), fallbackName)

export const api = {
  get: (path, query) => request('GET', withQuery(path, query)),
  post: (path, body) => request('POST', path, { body: body ?? {} }),
  patch: (path, body) => request('PATCH', path, { body }),
  del: (path) => request('DELETE', path),
  upload: (path, form) => request('POST', path, { form }),
  blobUrl: async (path) => URL.createObjectURL(await (await request('GET', path, { raw: true })).blob()),
  download,
  postDownload,
  login: async (username, password, totpCode) => {
    const body = { username, password }
    if (totpCode) body.totp_code = totpCode
    const data = await request('POST', '/api/auth/staff/login', { body, auth: false })
    session.access = data.access_token
    session.refresh = data.refresh_token
    session.user = data.user
    return data
  },
  logout: async () => {
    try {
      await request('POST', '/api/auth/logout', { body: { refresh_token: session.refresh } })
    } catch {
      // signing out locally is what matters
    }
    signOut()
  },
}
