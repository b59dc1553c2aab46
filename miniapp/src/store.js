// App-wide state kept in localStorage: the session tokens and the user's display preferences.
import { reactive, watch } from 'vue'

const KEY = 'zhilian.app'

function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) || '{}')
  } catch {
    return {}
  }
}

const saved = load()

export const store = reactive({
  access: saved.access || '',
  refresh: saved.refresh || '',
  user: saved.user || null, // { id, resident_id }
  phone: saved.phone || '',
  elderMode: saved.elderMode !== false, // 长辈版 on by default
  voice: saved.voice !== false,
  deviceId: saved.deviceId || `h5-${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`,
})

watch(store, (value) => localStorage.setItem(KEY, JSON.stringify(value)), { deep: true, immediate: true })

export function signedIn() {
  return Boolean(store.access && store.user)
}

export function signOut() {
  store.access = ''
  store.refresh = ''
  store.user = null
}
