// The SOS button: held for two seconds (the fill shows how long is left), so that a
// pocket or a brush cannot raise it, and released early it does nothing.

export const HOLD_MS = 2000;

/** Calls `fire()` when `button` has been held for [`HOLD_MS`]. */
export function holdToFire(button, fire) {
  let timer = null;
  const cancel = () => {
    clearTimeout(timer);
    timer = null;
    button.classList.remove('holding');
  };
  const begin = (ev) => {
    ev.preventDefault();
    if (timer) return;
    button.classList.add('holding');
    timer = setTimeout(() => {
      timer = null;
      button.classList.remove('holding');
      fire();
    }, HOLD_MS);
  };
  button.addEventListener('pointerdown', begin);
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(ev, cancel);
  button.addEventListener('contextmenu', (ev) => ev.preventDefault());
  // A keyboard (or a switch control) holds it with the space bar or Enter.
  button.addEventListener('keydown', (ev) => {
    if ((ev.key === ' ' || ev.key === 'Enter') && !ev.repeat) begin(ev);
  });
  button.addEventListener('keyup', cancel);
}
