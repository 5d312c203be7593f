// Photos from the phone's camera, shrunk on the phone before they are kept or sent: a
// phone's 12-megapixel JPEG is 3 to 5 MB, too much for a weak signal and the server's
// body limit; at most 1280 px on the long side and JPEG quality 0.8 it is 150 to 300 KB.

export const MAX_PHOTOS = 3;
const LONG_SIDE_PX = 1280;
const QUALITY = 0.8;

/** A picture file as a `data:image/jpeg;base64,…` URL at most 1280 px on its long side. */
export async function shrink(file) {
  const bitmap = await createImageBitmap(file);
  const k = Math.min(1, LONG_SIDE_PX / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * k));
  canvas.height = Math.max(1, Math.round(bitmap.height * k));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  return canvas.toDataURL('image/jpeg', QUALITY);
}

/** The base64 part of a data URL, as the API's `photos_base64` takes it. */
export const base64Of = (dataUrl) => dataUrl.slice(dataUrl.indexOf(',') + 1);

/**
 * Wires a file input to a list of shrunk photos shown as thumbnails in `thumbs`; answers
 * `{ photos, clear }`, where `photos()` are the data URLs chosen so far (at most three).
 */
export function photoPicker(input, thumbs, onError) {
  let photos = [];
  const draw = () => {
    thumbs.replaceChildren(...photos.map((src) => Object.assign(document.createElement('img'), { src, alt: '' })));
  };
  input.addEventListener('change', async () => {
    for (const file of [...input.files].slice(0, MAX_PHOTOS - photos.length)) {
      try {
        photos.push(await shrink(file));
      } catch (e) {
        onError?.(e);
      }
    }
    input.value = '';
    draw();
  });
  return {
    photos: () => photos.slice(),
    clear: () => {
      photos = [];
      draw();
    },
  };
}
