// Same-origin JSON API client: bearer token, one shared refresh attempt on 401, errors as ApiError.
import { store, signOut } from './store'

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

const OFFLINE = '网络不太好，请检查网络后再试'

/** A fresh Idempotency-Key: one per user action, so the server does a create once however often it is sent. */
export function idempotencyKey() {
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes) // unlike crypto.randomUUID, also on plain-http intranet hosts
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

async function send(method, path, body, auth, key) {
  const headers = {}
  if (key) headers['Idempotency-Key'] = key
  const form = typeof FormData !== 'undefined' && body instanceof FormData // a file upload: the browser sets its type
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json'
  if (auth && store.access) headers.Authorization = `Bearer ${store.access}`
  let response
  try {
    response = await fetch(path, { method, headers, body: body === undefined || form ? body : JSON.stringify(body) })
  } catch {
    throw new ApiError(0, 'network', OFFLINE)
  }
  return response
}

async function rotateTokens() {
  if (!store.refresh) return false
  const response = await send('POST', '/api/auth/refresh', { refresh_token: store.refresh }, false)
  if (!response.ok) return false
  const pair = await response.json()
  store.access = pair.access_token
  store.refresh = pair.refresh_token || store.refresh
  return true
}

// One refresh in flight at a time: screens load several things at once, and requests that all meet
// an expired token must not each present the same refresh token (the server would take the second
// for a stolen copy and sign the user out). They wait for this one.
let refreshing = null

function refreshTokens() {
  if (!refreshing) refreshing = rotateTokens().finally(() => { refreshing = null })
  return refreshing
}

export async function request(method, path, body, { auth = true, raw = false } = {}) {
  const sentWith = store.access
  // one key per call: the resend after a token refresh is the same action, so it cannot create twice
  const key = method === 'POST' && auth ? idempotencyKey() : undefined
  let response = await send(method, path, body, auth, key)
  // a refresh that finished while this request was out already gave a new token: use it, do not rotate again
  if (response.status === 401 && auth && ((store.access && store.access !== sentWith) || (await refreshTokens()))) {
    response = await send(method, path, body, auth, key)
  }
  if (response.status === 401 && auth) {
    signOut()
    throw new ApiError(401, 'auth.expired', '登录已过期，请重新登录')
  }
  if (raw) {
    if (!response.ok) throw new ApiError(response.status, 'http', '加载失败，请稍后再试')
    return response
  }
  let data = null
  try {
    data = await response.json()
  } catch {
    data = null
  }
  if (!response.ok) {
    const error = (data && data.error) || {}
    throw new ApiError(response.status, error.code || 'http', error.message || '出了点问题，请稍后再试')
  }
  return data
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body) => request('POST', path, body ?? {}),
  del: (path) => request('DELETE', path),
  upload: (path, form) => request('POST', path, form), // multipart (FormData), e.g. a photo
  image: async (path) => URL.createObjectURL(await (await request('GET', path, undefined, { raw: true })).blob()),
  sendCode: (phone) => request('POST', '/api/auth/app/otp', { phone }, { auth: false }),
  login: async (phone, code) => {
    const data = await request('POST', '/api/auth/app/login', { phone, code }, { auth: false })
    store.access = data.access_token
    store.refresh = data.refresh_token
    store.user = data.user
    store.phone = phone
    return data
  },
  logout: async () => {
    try {
      await request('POST', '/api/auth/logout', { refresh_token: store.refresh })
    } catch {
      // signing out locally is what matters
    }
    signOut()
  },
}

export function wsUrl(path) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${location.host}${path}`
}
