// Spoken prompts (zh-CN) through speechSynthesis; silently absent where the WebView lacks it.
import { store } from './store'

const synth = typeof window !== 'undefined' && 'speechSynthesis' in window ? window.speechSynthesis : null
let last = { text: '', at: 0 }
const MIN_GAP_MS = 2500 // guidance that flickers must not turn into chatter

export const voiceAvailable = Boolean(synth && typeof window.SpeechSynthesisUtterance === 'function')

/** Say `text` (interrupting what is being said); the same sentence is not repeated within `gapMs`,
 * and nothing is said within MIN_GAP_MS of the last sentence unless `force` (a step done, a verdict). */
export function say(text, { gapMs = 4000, force = false } = {}) {
  if (!voiceAvailable || !store.voice || !text) return
  const now = Date.now()
  if (!force && ((text === last.text && now - last.at < gapMs) || now - last.at < MIN_GAP_MS)) return
  last = { text, at: now }
  try {
    synth.cancel()
    const utterance = new window.SpeechSynthesisUtterance(text)
    utterance.lang = 'zh-CN'
    utterance.rate = 0.85 // slower for older ears
    const zh = synth.getVoices().find((v) => /zh[-_]CN/i.test(v.lang))
    if (zh) utterance.voice = zh
    synth.speak(utterance)
  } catch {
    // no voice on this device: the words on screen carry the same message
  }
}

export function hush() {
  if (!voiceAvailable) return
  try {
    synth.cancel()
  } catch {
    // ignore
  }
}
