// The administrator's device registration (设备登记): the registered devices
// (`GET /api/v1/devices`) with their unit and when each was last heard from, a form that
// registers a phone (`POST /api/v1/devices`), and, once the server answers with the new
// key, a sheet to hand to the officer or print: the QR code of the phone's sign-in link,
// the link, the device id and the key in large type.
//
// The link opens the field app with everything it needs in the address's fragment,
// `<server>/field/#server=<server>&device=<id>&key=<key>`: a browser never sends the
// fragment to a server, so the key reaches no log, and the phone's own camera app opens
// it. The key is shown once, as the server answers it once: the page never stores it, and
// "Done" takes it out of the page. Registering a known device id again (a lost phone)
// issues a new key and voids the old one at once, so it asks for a second click.

import qrcode from '/node_modules/qrcode-generator/dist/qrcode.mjs';
import { el } from './dom.js';
import { t, translated, clock, dateLine } from './i18n.js';

/** The kinds of device the server accepts (crates/liandong-server/src/devices.rs). */
export const DEVICE_KINDS = ['post_officer', 'patrol_member', 'patrol_leader', 'vehicle', 'other'];

/** The server's rule for a device id, so that the form says what is wrong before asking. */
const DEVICE_ID = /^[A-Za-z0-9._:@-]{1,64}$/;

/** How long a "reissue the key" button waits for its second click. */
const CONFIRM_MS = 4000;

/**
 * The field app's sign-in link for a device: the server's origin, then the fragment with
 * the origin, the device id and the key, each URL-encoded.
 */
export function fieldLink(server, deviceId, key) {
  const origin = new URL(server).origin;
  return `${origin}/field/#${new URLSearchParams({ server: origin, device: deviceId, key })}`;
}

/**
 * The QR code of `text` as an SVG element: one unit per module, with the four-module quiet
 * zone the standard asks for, so that it scales to any size and prints sharp.
 */
export function qrSvg(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const quiet = 4;
  const size = n + 2 * quiet;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.setAttribute('role', 'img');
  svg.dataset.modules = String(n);
  const back = document.createElementNS(ns, 'rect');
  back.setAttribute('width', String(size));
  back.setAttribute('height', String(size));
  back.setAttribute('fill', '#ffffff');
  const dark = [];
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) dark.push(`M${c + quiet} ${r + quiet}h1v1h-1z`);
  }
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', dark.join(''));
  path.setAttribute('fill', '#000000');
  svg.append(back, path);
  return svg;
}

export class DevicesPanel {
  /**
   * @param {object} o
   * @param {import('./api.js').Api} o.api
   * @param {HTMLElement} o.body the panel's body in the drawer
   * @param {HTMLElement} o.sheet the sheet that shows a new key (outside the drawer, so it prints alone)
   * @param {string[]} o.units the unit ids to suggest (teams and posts)
   * @param {(devices: object[]) => void} o.onList the registry as the server listed it
   */
  constructor(o) {
    this.o = o;
    this.devices = [];
    this.error = null;
    this.formError = null;
    this.busy = false;
    /** The device id whose key waits for a second click before it is reissued. */
    this.confirming = null;
    /** What the sheet shows: `{ device, key, link, reissued }` while it is open, else null. */
    this.issued = null;
    // The form is built once and kept, so that a render (the list arriving, a confirmation
    // running out) never takes what the administrator is typing or the focus away.
    this.form = this.buildForm();
    this.count = el('small');
    // The title in a span of its own: the language switch rewrites its text, not the count's.
    const head = el('h4');
    head.append(translated('devices_registered'), this.count);
    this.listError = el('p', 'error');
    this.list = el('ol', 'device-list');
    o.body.replaceChildren(this.form, head, this.listError, this.list);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    // Another device id typed: a pending confirmation was for the old one.
    this.input('device_id').addEventListener('input', () => this.render());
    this.list.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-rekey]');
      if (b && !b.disabled) this.rekey(b.dataset.rekey);
    });
    o.sheet.addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-sheet]');
      if (b?.dataset.sheet === 'print') window.print();
      if (b?.dataset.sheet === 'done') this.done();
    });
    this.render();
  }

  /** The panel is shown: the registry is read again, as another administrator may have changed it. */
  show() {
    return this.load();
  }

  async load() {
    try {
      const { devices } = await this.o.api.get('/api/v1/devices');
      this.devices = devices;
      this.error = null;
      this.o.onList(devices);
    } catch (e) {
      this.error = e.message;
    }
    this.render();
  }

  known(id) {
    return this.devices.find((d) => d.device_id === id);
  }

  input(name) {
    return this.form.elements.namedItem(name);
  }

  /** The form's values, trimmed. */
  values() {
    const v = (name) => this.input(name).value.trim();
    return { device_id: v('device_id'), name: v('device_name'), kind: v('kind'), unit_id: v('unit_id'), server: v('server') };
  }

  /** The form: a new device, or a known one whose key is reissued after a second click. */
  async submit() {
    if (this.busy) return;
    const d = this.values();
    const refuse = (key) => {
      this.formError = t(key);
      this.render();
    };
    if (!DEVICE_ID.test(d.device_id)) return refuse('device_id_invalid');
    if (!d.name) return refuse('device_name_missing');
    if (!serverOk(d.server)) return refuse('device_server_invalid');
    if (this.known(d.device_id) && this.confirming !== d.device_id) {
      this.askConfirm(d.device_id);
      return;
    }
    if (await this.register({ device_id: d.device_id, name: d.name, kind: d.kind, unit_id: d.unit_id || undefined }, d.server)) {
      for (const name of ['device_id', 'device_name', 'unit_id']) this.input(name).value = '';
    }
  }

  /** A listed device's "reissue the key" button: the second click within a few seconds does it. */
  async rekey(id) {
    const d = this.known(id);
    if (!d || this.busy) return;
    const server = this.values().server;
    if (!serverOk(server)) {
      this.formError = t('device_server_invalid');
      this.render();
      return;
    }
    if (this.confirming !== id) {
      this.askConfirm(id);
      return;
    }
    await this.register({ device_id: d.device_id, name: d.name, kind: d.kind, unit_id: d.unit_id ?? undefined }, server);
  }

  askConfirm(id) {
    this.confirming = id;
    this.formError = null;
    this.render();
    setTimeout(() => {
      if (this.confirming === id) {
        this.confirming = null;
        this.render();
      }
    }, CONFIRM_MS);
  }

  /**
   * Registers (or re-registers) a device without a key, so that the server generates one,
   * and opens the sheet with it. Answers whether the server took it.
   */
  async register(body, server) {
    this.confirming = null;
    this.busy = true;
    this.formError = null;
    this.render();
    let ok = false;
    try {
      const res = await this.o.api.post('/api/v1/devices', body);
      const reissued = this.known(body.device_id) !== undefined;
      this.issued = { device: res.device, key: res.key, link: fieldLink(server, res.device.device_id, res.key), reissued };
      this.renderSheet();
      ok = true;
    } catch (e) {
      this.formError = t('device_register_failed', { reason: e.message });
    } finally {
      this.busy = false;
    }
    this.render();
    await this.load();
    return ok;
  }

  /** "Done": the key leaves the page, and the list is read again to show whether the phone has reported yet. */
  done() {
    this.issued = null;
    this.renderSheet();
    return this.load();
  }

  buildForm() {
    const f = el('form', 'device-form');
    f.autocomplete = 'off';
    f.append(translated('device_new', 'h4'));
    const field = (name, label, input) => {
      const l = el('label');
      input.name = name;
      l.append(translated(label), input);
      f.append(l);
      return input;
    };
    const id = field('device_id', 'device_id', el('input'));
    id.spellcheck = false;
    id.required = true;
    id.maxLength = 64;
    const name = field('device_name', 'device_name', el('input'));
    name.required = true;
    name.maxLength = 100;
    const kind = field('kind', 'device_kind', el('select'));
    for (const k of DEVICE_KINDS) {
      const opt = translated(`unit_kind.${k}`, 'option');
      opt.value = k;
      kind.append(opt);
    }
    const unit = field('unit_id', 'device_unit', el('input'));
    unit.spellcheck = false;
    unit.setAttribute('list', 'device-units');
    const units = el('datalist');
    units.id = 'device-units';
    for (const u of this.o.units) {
      const opt = el('option');
      opt.value = u;
      units.append(opt);
    }
    f.append(units);
    const server = field('server', 'device_server', el('input'));
    server.type = 'url';
    server.spellcheck = false;
    server.value = location.origin;
    f.append(translated('device_server_hint', 'p'));
    f.lastChild.className = 'hint';
    const submit = el('button', 'primary');
    submit.type = 'submit';
    this.submitButton = submit;
    this.formErrorLine = el('p', 'error');
    f.append(submit, this.formErrorLine);
    return f;
  }

  /** The parts that change: the submit button, the errors, the count and the list. */
  render() {
    const again = this.confirming !== null && this.confirming === this.values().device_id;
    this.submitButton.textContent = t(again ? 'device_reissue_confirm' : 'device_register');
    this.submitButton.classList.toggle('confirming', again);
    this.submitButton.disabled = this.busy;
    this.formErrorLine.hidden = !this.formError;
    this.formErrorLine.textContent = this.formError ?? '';
    this.count.textContent = t('devices_n', { n: this.devices.length });
    this.listError.hidden = !this.error;
    this.listError.textContent = this.error ? t('devices_failed', { reason: this.error }) : '';
    this.list.replaceChildren();
    if (this.devices.length === 0 && !this.error) this.list.append(el('li', 'empty', t('devices_none')));
    for (const d of this.devices) this.list.append(this.row(d));
  }

  row(d) {
    const li = el('li', 'device');
    li.dataset.id = d.device_id;
    const text = el('div', 'text');
    const head = el('div', 'head');
    head.append(el('span', 'name', d.name), el('span', 'id', d.device_id));
    const line = el('div', 'line');
    line.append(el('span', 'kind', t(`unit_kind.${d.kind}`)), el('span', 'unit', d.unit_id ?? t('device_no_unit')));
    const fix = Date.parse(d.last?.fix_time ?? '');
    line.append(el('span', 'seen', Number.isFinite(fix) ? t('device_seen', { time: seenAt(fix) }) : t('device_never_seen')));
    text.append(head, line);
    const asking = this.confirming === d.device_id;
    const b = el('button', asking ? 'rekey confirming' : 'rekey', t(asking ? 'device_reissue_confirm' : 'device_reissue'));
    b.type = 'button';
    b.dataset.rekey = d.device_id;
    b.disabled = this.busy;
    li.append(text, b);
    return li;
  }

  /** The sheet with the new key, or nothing: closing it removes the key, the link and the code from the page. */
  renderSheet() {
    const sheet = this.o.sheet;
    sheet.replaceChildren();
    const open = this.issued !== null;
    sheet.hidden = !open;
    document.documentElement.dataset.sheet = open ? 'open' : '';
    if (!open) return;
    const { device, key, link, reissued } = this.issued;
    const card = el('div', 'sheet-card');
    card.append(translated(reissued ? 'sheet_title_reissued' : 'sheet_title', 'h2'));
    const qr = el('div', 'qr');
    qr.append(qrSvg(link));
    const facts = el('dl', 'facts');
    const fact = (label, value, cls) => {
      facts.append(translated(label, 'dt'), el('dd', cls, value));
    };
    fact('device_name', device.name, 'name');
    fact('device_unit', device.unit_id ?? t('device_no_unit'), 'unit');
    fact('device_id', device.device_id, 'big id');
    fact('device_key', key, 'big key');
    fact('device_server', new URL(link).origin, 'server');
    const side = el('div', 'side');
    side.append(facts, translated('sheet_scan', 'p'), el('p', 'link', link));
    const row = el('div', 'sheet-body');
    row.append(qr, side);
    card.append(row, translated('sheet_once', 'p'));
    const actions = el('div', 'actions');
    const print = translated('sheet_print', 'button');
    print.type = 'button';
    print.dataset.sheet = 'print';
    const done = translated('sheet_done', 'button');
    done.type = 'button';
    done.dataset.sheet = 'done';
    done.className = 'primary';
    actions.append(print, done);
    card.append(actions);
    sheet.append(card);
    done.focus();
  }
}

/** When a device was last heard from: the time today, with the date when it was another day. */
function seenAt(ms) {
  const sameDay = dateLine(ms) === dateLine(Date.now());
  return sameDay ? clock(ms, false) : `${dateLine(ms)} ${clock(ms, false)}`;
}

/** Whether the server address is one a phone can open: an http or https URL. */
function serverOk(text) {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}
