// Spoken prompts (zh-CN) through speechSynthesis; where the WebView has none, recorded clips
// (public/voice, made with espeak-ng by scripts/make_voice_clips.py) say the known phrases.
import { store } from './store'
import CLIPS from './voice-clips.json'

const synth = typeof window !== 'undefined' && 'speechSynthesis' in window ? window.speechSynthesis : null
let last = { text: '', at: 0 }
const MIN_GAP_MS = 2500 // guidance that flickers must not turn into chatter
const BASE = `${import.meta.env.BASE_URL}voice/`

export const voiceAvailable = Boolean(synth && typeof window.SpeechSynthesisUtterance === 'function')
const clipsAvailable = typeof window !== 'undefined' && typeof window.Audio === 'function'

/** The clips that say `text`: the whole sentence if recorded, else each recorded piece between
 * its punctuation marks, in order (pieces without a clip stay unsaid; the screen shows them). */
export function clipsFor(text) {
  if (!text) return []
  if (CLIPS[text]) return [CLIPS[text]]
  return text
    .split(/[。！？；：，,.!?;:]+/)
    .map((piece) => piece.trim())
    .filter((piece) => CLIPS[piece])
    .map((piece) => CLIPS[piece])
}

let queue = []
let playing = null

function playNext() {
  const next = queue.shift()
  if (!next) {
    playing = null
    return
  }
  playing = new window.Audio(BASE + next)
  playing.onended = playNext
  playing.onerror = playNext
  const started = playing.play()
  if (started && typeof started.catch === 'function') started.catch(() => playNext())
}

function playClips(text, force) {
  const clips = clipsFor(text)
  if (!clips.length || (playing && !force)) return // recorded sentences are slow: guidance waits its turn
  stopClips()
  queue = clips
  playNext()
}

function stopClips() {
  queue = []
  if (playing) {
    try {
      playing.pause()
    } catch {
      // already stopped
    }
  }
  playing = null
}

/** Say `text` (interrupting what is being said); the same sentence is not repeated within `gapMs`,
 * and nothing is said within MIN_GAP_MS of the last sentence unless `force` (a step done, a verdict). */
export function say(text, { gapMs = 4000, force = false } = {}) {
  if (!store.voice || !text || (!voiceAvailable && !clipsAvailable)) return
  const now = Date.now()
  if (!force && ((text === last.text && now - last.at < gapMs) || now - last.at < MIN_GAP_MS)) return
  last = { text, at: now }
  if (!voiceAvailable) {
    playClips(text, force)
    return
  }
  try {
    synth.cancel()
    const utterance = new window.SpeechSynthesisUtterance(text)
    utterance.lang = 'zh-CN'
    utterance.rate = 0.85 // slower for older ears
    const zh = synth.getVoices().find((v) => /zh[-_]CN/i.test(v.lang))
    if (zh) utterance.voice = zh
    synth.speak(utterance)
  } catch {
    playClips(text, true) // the synthesiser failed: the recorded clips still speak
  }
}

export function hush() {
  stopClips()
  if (!voiceAvailable) return
  try {
    synth.cancel()
  } catch {
    // ignore
  }
}
