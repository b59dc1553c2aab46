// One liveness session over /ws/certify: auth, start, stream frames, follow the server's guidance.
// The server decides; this only shows and says what it answers.
import { store } from './store'
import { idempotencyKey, request, wsUrl } from './api'
import { frameGrabber } from './camera'

const FPS = 9
const MAX_IN_FLIGHT = 2

export const ACTION_WORDS = {
  blink: '眨眨眼',
  turn_left: '向左转头',
  turn_right: '向右转头',
  open_mouth: '张张嘴',
  nod: '点点头',
}

/**
 * Run a session. `on` receives: challenge(msg), progress(msg), result(msg), error({code, message}),
 * dropped() when the connection ends without a verdict. Returns { stop() }.
 */
export function runSession({ video, residentId }, on) {
  const grab = frameGrabber(video, { maxSide: 480, quality: 0.7 })
  let socket
  let timer = null
  let inFlight = 0
  let finished = false
  let settled = false
  let busy = false

  const settle = () => {
    settled = true
    if (timer) clearInterval(timer)
    timer = null
  }

  const tick = async () => {
    if (finished || busy || inFlight >= MAX_IN_FLIGHT || socket.readyState !== WebSocket.OPEN) return
    busy = true
    try {
      const blob = await grab()
      if (blob && !finished && socket.readyState === WebSocket.OPEN) {
        socket.send(await blob.arrayBuffer())
        inFlight += 1
      }
    } finally {
      busy = false
    }
  }

  let heard = false // any message from the server: after one, a closed socket is a drop, not a blocked one
  let fallback = null
  const useHttp = () => {
    settled = true
    if (timer) clearInterval(timer)
    fallback = runOverHttp({ video, residentId, grab }, on)
  }
  try {
    socket = new WebSocket(wsUrl('/ws/certify'))
  } catch {
    useHttp()
    return { stop: () => fallback && fallback.stop() }
  }
  socket.binaryType = 'arraybuffer'
  socket.onopen = () => {
    socket.send(JSON.stringify({ type: 'auth', token: store.access }))
    socket.send(JSON.stringify({ type: 'start', resident_id: residentId, device_id: store.deviceId }))
  }
  socket.onmessage = (event) => {
    heard = true
    let message
    try {
      message = JSON.parse(event.data)
    } catch {
      return
    }
    // the session's messages, for support and the browser tests (no pictures, no personal data)
    window.__certifyLog = (window.__certifyLog || []).concat([{ at: Date.now(), ...message }]).slice(-400)
    if (message.type === 'challenge') {
      on.challenge(message)
      timer = setInterval(tick, Math.round(1000 / FPS))
    } else if (message.type === 'progress') {
      inFlight = Math.max(0, inFlight - 1)
      on.progress(message)
      if (message.finished && !finished) {
        finished = true
        if (timer) clearInterval(timer)
        socket.send(JSON.stringify({ type: 'finish' }))
      }
    } else if (message.type === 'result') {
      settle()
      on.result(message)
    } else if (message.type === 'error') {
      settle()
      on.error(message.error || { code: 'error', message: '出了点问题，请重新开始' })
    }
  }
  socket.onclose = () => {
    if (timer) clearInterval(timer)
    if (!settled && !heard) useHttp() // some networks block WebSockets: upload the frames instead
    else if (!settled) {
      settled = true
      on.dropped()
    }
  }
  socket.onerror = () => {}

  return {
    stop() {
      settled = true
      if (fallback) fallback.stop()
      if (timer) clearInterval(timer)
      try {
        socket.close()
      } catch {
        // already closed
      }
    },
  }
}

/**
 * The HTTP fallback (POST /api/certify/sessions, then all frames in one upload with their times).
 * Without a live answer per frame the app walks through the prompts on a timeline and cannot tick
 * actions off; the server still decides everything from the frames.
 */
function runOverHttp({ residentId, grab }, on) {
  let stopped = false
  let timer = null
  const stop = () => {
    stopped = true
    if (timer) clearInterval(timer)
  }
  ;(async () => {
    let info
    try {
      info = await request('POST', '/api/certify/sessions', { resident_id: residentId, device_id: store.deviceId })
    } catch (error) {
      if (error.code === 'network') on.dropped()
      else on.error({ code: error.code, message: error.message })
      return
    }
    if (stopped) return
    const n = info.actions.length
    const seconds = Math.max(6, Math.min(info.expires_in - 4, 4 + 7 * n))
    on.challenge({ ...info, hint: info.prompts[0], http: true })
    const started = performance.now()
    const frames = []
    let busy = false
    await new Promise((resolve) => {
      timer = setInterval(async () => {
        const elapsed = (performance.now() - started) / 1000
        if (stopped || elapsed >= seconds) {
          clearInterval(timer)
          return resolve()
        }
        const step = Math.min(n - 1, Math.floor((elapsed / seconds) * n))
        on.progress({ type: 'progress', code: `liveness.${info.actions[step]}`, hint: info.prompts[step], done: [],
          step, finished: false, http: true })
        if (busy) return
        busy = true
        const t = Math.round(performance.now() - started) + 200
        const blob = await grab()
        if (blob) frames.push({ blob, t })
        busy = false
      }, Math.round(1000 / 8))
    })
    if (stopped) return
    on.progress({ type: 'progress', code: 'liveness.done', hint: '动作完成，请稍候', done: [], finished: true, http: true })
    const form = new FormData()
    form.append('device_id', store.deviceId)
    frames.forEach((f, i) => {
      form.append('frame', f.blob, `${i}.jpg`)
      form.append('t', String(f.t))
    })
    try {
      const response = await fetch(`/api/certify/sessions/${info.session_id}/frames`, {
        method: 'POST', body: form,
        headers: { Authorization: `Bearer ${store.access}`, 'Idempotency-Key': idempotencyKey() },
      })
      const body = await response.json().catch(() => ({}))
      if (stopped) return
      if (response.ok) on.result(body)
      else on.error(body.error || { code: 'http', message: '上传没有成功，请重新开始' })
    } catch {
      if (!stopped) on.dropped()
    }
  })()
  return { stop }
}
