// The page's DOM helpers: every panel builds its markup with these, so an element is made
// one way wherever it appears. They know nothing of the map, the server or the language.

/** The element with id `id` in the page. */
export const $ = (id) => document.getElementById(id);

/**
 * A new `tag` element with the class list `cls` and the text `text`. An empty or missing
 * `cls` leaves the element without a `class` attribute, and a missing `text` leaves it
 * empty, so `el('li')` is exactly `document.createElement('li')`.
 */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A legend's colour square: a `span.swatch` painted `color`. */
export function swatch(color) {
  const s = el('span', 'swatch');
  s.style.background = color;
  return s;
}
