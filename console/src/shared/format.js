// How the console writes times, months and rates: the browser's local time, "—" for a missing value.

const pad = (n) => String(n).padStart(2, '0')

function stamp(iso, seconds) {
  if (!iso) return '—'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const minutes = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
  return seconds ? `${minutes}:${pad(d.getSeconds())}` : minutes
}

/** "2026-11-03 14:05", or "—". */
export const formatTime = (iso) => stamp(iso, false)

/** "2026-11-03 14:05:09" (audit and chain records, where the second matters), or "—". */
export const formatSeconds = (iso) => stamp(iso, true)

/** "2026-11" → "2026年11月". */
export function formatMonth(month) {
  if (!month) return ''
  const [year, mon] = month.split('-')
  return `${year}年${Number(mon)}月`
}

/** 0.873 → "87.3%", or "—" when there is no rate (nobody due). */
export function percent(rate, digits = 1) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(digits)}%`
}
