// Reading QR codes from the camera picture: the browser's BarcodeDetector where it has one, jsQR otherwise.
// Used by the helper's scan of an elder's code and by 随手拍's scan of a fixed point's sign.
import jsQR from 'jsqr'

/** A function that reads the QR code in the current video picture ('' when there is none). */
export function qrDecoder() {
  if ('BarcodeDetector' in window) {
    try {
      const detector = new window.BarcodeDetector({ formats: ['qr_code'] })
      return async (source) => ((await detector.detect(source))[0] || {}).rawValue || ''
    } catch {
      // fall through to jsQR
    }
  }
  const canvas = document.createElement('canvas')
  const context = canvas.getContext('2d', { willReadFrequently: true })
  return async (source) => {
    const w = source.videoWidth
    const h = source.videoHeight
    if (!w || !h) return ''
    const scale = Math.min(1, 640 / Math.max(w, h))
    canvas.width = Math.round(w * scale)
    canvas.height = Math.round(h * scale)
    context.drawImage(source, 0, 0, canvas.width, canvas.height)
    const image = context.getImageData(0, 0, canvas.width, canvas.height)
    const found = jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' })
    return found ? found.data : ''
  }
}

/** Look at the video four times a second until a code is read; `onText` gets it. Returns stop(). */
export function watchForQr(video, onText, { everyMs = 250 } = {}) {
  const decode = qrDecoder()
  let busy = false
  let stopped = false
  const timer = setInterval(async () => {
    if (busy || stopped || !video) return
    busy = true
    try {
      const text = await decode(video)
      if (text && !stopped) onText(text)
    } catch {
      // keep looking
    } finally {
      busy = false
    }
  }, everyMs)
  return () => {
    stopped = true
    clearInterval(timer)
  }
}

/** A fixed point's sign (随手拍) rather than a resident's code: its token starts with WP1. */
export function isPointSign(text) {
  const value = (text || '').trim()
  const match = /[?&]t=([^&#\s]+)/.exec(value)
  const token = decodeURIComponent(match ? match[1] : value)
  return /^WP1\./i.test(token.trim())
}
