// The phone camera: open it, and grab downscaled JPEG frames of what it sees (never mirrored).

export class CameraError extends Error {
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

export async function openCamera(video, { facing = 'user' } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CameraError('camera.unsupported', '这个浏览器不能打开摄像头，请换用微信或手机自带浏览器打开')
  }
  let stream
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: facing, width: { ideal: 640 }, height: { ideal: 480 } },
    })
  } catch (error) {
    if (error && (error.name === 'NotAllowedError' || error.name === 'SecurityError')) {
      throw new CameraError('camera.denied', '没有得到摄像头权限。请在手机设置里允许使用摄像头，然后再试')
    }
    throw new CameraError('camera.failed', '摄像头打不开，请关闭其他用到摄像头的应用后再试')
  }
  video.srcObject = stream
  video.muted = true
  video.setAttribute('playsinline', '')
  await video.play().catch(() => {})
  await new Promise((resolve) => {
    if (video.videoWidth) return resolve()
    video.addEventListener('loadedmetadata', resolve, { once: true })
    setTimeout(resolve, 3000)
  })
  return stream
}

export function closeCamera(stream, video) {
  if (stream) stream.getTracks().forEach((track) => track.stop())
  if (video) video.srcObject = null
}

/** A grabber that turns the current video picture into JPEG bytes, at most `maxSide` px wide or high. */
export function frameGrabber(video, { maxSide = 480, quality = 0.7 } = {}) {
  const canvas = document.createElement('canvas')
  const context = canvas.getContext('2d')
  return () =>
    new Promise((resolve) => {
      const w = video.videoWidth
      const h = video.videoHeight
      if (!w || !h) return resolve(null)
      const scale = Math.min(1, maxSide / Math.max(w, h))
      canvas.width = Math.round(w * scale)
      canvas.height = Math.round(h * scale)
      context.drawImage(video, 0, 0, canvas.width, canvas.height)
      canvas.toBlob((blob) => resolve(blob), 'image/jpeg', quality)
    })
}
