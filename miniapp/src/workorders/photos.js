// Photos are made smaller on the phone before they are sent: a phone's 12-megapixel picture (3-5 MB)
// becomes a JPEG of at most 1600 px on its longer side (a few hundred kB), quicker on a weak signal.
// Drawing it afresh also leaves the camera's EXIF (GPS position included) on the phone; the server
// strips EXIF again anyway (backend/workorders/photos.py), it never trusts the phone for that.

export const MAX_SIDE = 1600
export const QUALITY = 0.8

async function decode(file) {
  if (typeof createImageBitmap === 'function') {
    try {
      return await createImageBitmap(file, { imageOrientation: 'from-image' }) // upright, as the camera held it
    } catch {
      // fall back to an <img> below
    }
  }
  const url = URL.createObjectURL(file)
  try {
    const image = new Image()
    image.src = url
    await image.decode()
    return image
  } finally {
    URL.revokeObjectURL(url)
  }
}

/** The picture as a smaller JPEG: { blob, url (for the preview), width, height, originalSize }. */
export async function compressPhoto(file, { maxSide = MAX_SIDE, quality = QUALITY } = {}) {
  let source
  try {
    source = await decode(file)
  } catch {
    throw new Error('这张不是照片，或者照片坏了，请换一张')
  }
  const w = source.width || source.naturalWidth
  const h = source.height || source.naturalHeight
  if (!w || !h) throw new Error('这张不是照片，或者照片坏了，请换一张')
  const scale = Math.min(1, maxSide / Math.max(w, h))
  const canvas = document.createElement('canvas')
  canvas.width = Math.round(w * scale)
  canvas.height = Math.round(h * scale)
  canvas.getContext('2d').drawImage(source, 0, 0, canvas.width, canvas.height)
  if (typeof source.close === 'function') source.close()
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality))
  if (!blob) throw new Error('照片没有处理好，请再试一次')
  return { blob, url: URL.createObjectURL(blob), width: canvas.width, height: canvas.height, originalSize: file.size }
}
