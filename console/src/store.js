// The signed-in staff member: tokens and profile, kept in sessionStorage (closing the tab signs out).
import { reactive, watch } from 'vue'

const KEY = 'zhilian.console.session'

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY)) || {}
  } catch {
    return {}
  }
}

const saved = load()
export const session = reactive({
  access: saved.access || null,
  refresh: saved.refresh || null,
  user: saved.user || null,
})

watch(session, (value) => sessionStorage.setItem(KEY, JSON.stringify(value)), { deep: true })

export function signOut() {
  session.access = null
  session.refresh = null
  session.user = null
}

export const signedIn = () => Boolean(session.access && session.user)
export const role = () => session.user?.role || null
