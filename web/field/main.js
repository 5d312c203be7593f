// The field app (`/field/`): a phone's side of the loop. It signs in with a device's id
// and key (typed, or from the QR code's link `/field/#server=…&device=…&key=…`), a
// person's one-time sign-in code (the link `/field/#server=…&code=…`) or a grid member's
// token, learns who it is (`GET /api/v1/whoami`), and shows what that caller
// works with: a patrol leader the team's plan, a post officer or patrol member the tasks,
// a grid member the report form and their reports. A device shares its position on the
// live feed and has the SOS button. Everything to send goes through the outbox, so no
// step is lost without signal; the service worker (sw.js) keeps the app, MapLibre and the
// county's layers, so it opens with none.

import { Api, ApiFailure } from '/wallmap/api.js';
import { LiveFeed } from '/wallmap/feed.js';
import { $, el } from '/wallmap/dom.js';
import { t, setLang, currentLang, clock } from './i18n.js';
import { FieldMap, LAYERS, point } from './fieldmap.js';
import { Outbox } from './outbox.js';
import { Sharing, fixItem, MOVING_S, STILL_S } from './share.js';
import { holdToFire } from './sos.js';
import { Leader } from './leader.js';
import { Tasks } from './tasks.js';
import { Reports } from './reports.js';
import { Escalations } from './escalations.js';
import { Visits } from './visits.js';

const CRED_KEY = 'liandong.field.cred';
const ME_KEY = 'liandong.field.me';
const SHARE_KEY = 'liandong.field.share';
const HERE_KEY = 'liandong.field.here';
/** The service worker's cache of API answers (sw.js), dropped on signing out. */
const API_CACHE = 'field-api';

/** The app's state, on `window.field` for the browser test. */
const app = {
  api: null,
  me: null,
  role: null,
  map: null,
  outbox: null,
  feed: null,
  sharing: null,
  leader: null,
  tasks: null,
  reports: null,
  /** The escalations that reached this phone's person (leaders' and officers' phones). */
  escalations: null,
  /** The person's home visits (and a post officer's referrals). */
  visits: null,
  here: null,
  sos: null,
  /** The last fix the server acknowledged: its time, `seq` and item. */
  lastSent: null,
};
window.field = app;

/** The live feed with the replies to this phone's own messages (acks of its fixes). */
class FieldFeed extends LiveFeed {
  handle(msg) {
    if ((msg.type === 'ack' || msg.type === 'error') && msg.id !== undefined && msg.id !== null) {
      app.outbox?.reply(msg);
      return;
    }
    super.handle(msg);
  }

  send(message) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  get open() {
    return this.ws?.readyState === WebSocket.OPEN;
  }
}

function toast(text) {
  const box = $('toast');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 4000);
}

/**
 * What the QR code's link carries in its fragment, taken out of the address bar: a
 * device's id and key (stored as the credentials), or a person's one-time sign-in code
 * (`#server=…&code=…`, exchanged for a session by [`exchangeCode`]).
 */
function fromFragment() {
  if (!location.hash) return {};
  const p = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname + location.search);
  const code = p.get('code');
  if (code) return { code };
  const device = p.get('device');
  const key = p.get('key');
  if (!device || !key) return {};
  localStorage.setItem(CRED_KEY, JSON.stringify({ token: key, device }));
  return { device };
}

/** A session token (a person signed in), not a device's key or a config token. */
function isSession(token) {
  return typeof token === 'string' && token.startsWith('lds_');
}

/**
 * Exchanges a one-time sign-in code for a session and stores it as the credentials;
 * answers them, or null when the code is refused (used, expired or unknown).
 */
async function exchangeCode(code) {
  const res = await fetch('/api/v1/sessions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  if (!res.ok) return null;
  const session = await res.json();
  const cred = { token: session.token };
  localStorage.setItem(CRED_KEY, JSON.stringify(cred));
  return cred;
}

/** How often a signed-in phone renews its session (well inside the idle lifetime). */
const RENEW_EVERY_MS = 30 * 60 * 1000;

function loadCred() {
  try {
    return JSON.parse(localStorage.getItem(CRED_KEY) ?? 'null');
  } catch {
    return null;
  }
}

function showLogin(error, note) {
  document.documentElement.dataset.state = 'login';
  registerWorker();
  $('login').hidden = false;
  $('login-error').hidden = !error;
  $('login-error').textContent = error ?? '';
  $('login-note').hidden = !note;
  $('login-note').textContent = note ?? '';
  let mode = 'device';
  const show = (m) => {
    mode = m;
    for (const b of document.querySelectorAll('#login [data-login]')) b.classList.toggle('on', b.dataset.login === m);
    for (const l of document.querySelectorAll('#login label[data-for]')) l.hidden = l.dataset.for !== m;
  };
  for (const b of document.querySelectorAll('#login [data-login]')) b.onclick = () => show(b.dataset.login);
  $('login-form').onsubmit = (ev) => {
    ev.preventDefault();
    const cred =
      mode === 'device'
        ? { token: $('login-key').value.trim(), device: $('login-device').value.trim() }
        : { token: $('login-token').value.trim() };
    if (!cred.token || (mode === 'device' && !cred.device)) return;
    localStorage.setItem(CRED_KEY, JSON.stringify(cred));
    $('login').hidden = true;
    start(cred);
  };
}

/** Who the token is: the server's answer, or (no signal) the answer kept from last time. */
async function whoami(cred) {
  try {
    const me = await app.api.get('/api/v1/whoami');
    localStorage.setItem(ME_KEY, JSON.stringify({ token: cred.token, me }));
    return me;
  } catch (e) {
    if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) throw e;
    const kept = keptMe(cred);
    if (kept) return kept;
    if (e instanceof ApiFailure && e.status === 404 && cred.device) {
      // A server without whoami: a device that says nothing of its unit.
      return { role: 'device', device_id: cred.device, name: cred.device, kind: 'other', unit_id: null };
    }
    throw e;
  }
}

/** A device's key answers whoami with its `device_id` (a gateway's user token has none). */
const isDevice = (me) => Boolean(me.device_id);

/**
 * What the app shows the caller. A device leads its team when it is a patrol leader's
 * phone with a unit, the test the live feed makes before it takes the phone's route
 * acknowledgements.
 */
function roleOf(me) {
  if (isDevice(me)) return me.kind === 'patrol_leader' && me.unit_id ? 'leader' : 'officer';
  if (me.role === 'patrol_leader' && me.unit_id) return 'leader';
  if (me.role === 'post_officer' && me.unit_id) return 'officer';
  if (me.role === 'grid_member') return 'grid';
  return null;
}

const TABS = { leader: ['plan', 'tasks'], officer: ['tasks'], grid: ['report', 'mine'] };

function showTab(name) {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.tab === name);
  for (const p of document.querySelectorAll('#sheet .panel')) p.hidden = p.id !== `panel-${name}`;
  document.documentElement.dataset.tab = name;
  // Opening "my reports" asks for their states now rather than at the next refresh.
  if (name === 'mine') app.reports?.load();
  if (name === 'visits') app.visits?.load();
}

/** A caller acting for a person (a session, or a phone bound to one) has home visits. */
const hasVisits = (me) => Boolean(me.person_id);

/** A post officer's phone or session also lists the post's referrals. */
const hasReferrals = (me) => me.role === 'post_officer' || (isDevice(me) && me.kind === 'post_officer' && Boolean(me.person_id));

function buildTabs(role) {
  const tabs = hasVisits(app.me) && role !== 'leader' ? [...TABS[role], 'visits'] : TABS[role];
  $('tabs').replaceChildren(
    ...tabs.map((name) => {
      const b = el('button', '', t(`tab.${name}`));
      b.type = 'button';
      b.dataset.tab = name;
      b.dataset.i18n = `tab.${name}`;
      b.onclick = () => showTab(name);
      return b;
    }),
  );
  $('tabs').hidden = tabs.length < 2;
  showTab(tabs[0]);
}

/**
 * The county's layers. On a first visit no service worker answers yet: the layers are
 * put in its cache here, so that the next start, with or without signal, has them.
 */
async function loadLayers() {
  const keep = !navigator.serviceWorker?.controller && 'caches' in window;
  const cache = keep ? await caches.open(API_CACHE) : null;
  const got = await Promise.all(
    LAYERS.map((n) =>
      app.api.get(`/api/v1/layers/${n}`).then(
        (fc) => {
          const headers = { 'content-type': 'application/geo+json', date: new Date().toUTCString() };
          cache?.put(new URL(`/api/v1/layers/${n}`, location.href), new Response(JSON.stringify(fc), { headers })).catch(() => {});
          return [n, fc];
        },
        () => null,
      ),
    ),
  );
  return Object.fromEntries(got.filter(Boolean));
}

function drawWho() {
  const me = app.me;
  $('who-name').textContent = isDevice(me) ? t('who_device', { name: me.name, device: me.device_id }) : me.name;
  $('who-role').textContent = app.role ? t(`role.${app.role}`) : '';
}

function drawNet() {
  const online = navigator.onLine && (app.feed ? app.feed.open : true);
  $('net-state').className = `pill ${online ? 'online' : 'offline'}`;
  $('net-state').textContent = t(online ? 'online' : 'offline');
  document.documentElement.dataset.net = online ? 'online' : 'offline';
}

function drawShare(state) {
  const on = state?.on ?? app.sharing?.on ?? false;
  $('share-button').classList.toggle('on', on);
  $('share-state').textContent = t(on ? 'share_on' : 'share_off');
  $('share-detail').textContent = state?.error === 'denied' ? t('share_denied') : on ? t(state?.moving ? 'share_moving' : 'share_still', { s: state?.moving ? MOVING_S : STILL_S }) : t('share_start');
  document.documentElement.dataset.sharing = on ? 'on' : 'off';
}

function drawOutbox({ fix, http }) {
  const n = fix + http;
  $('outbox-state').textContent = n ? t('queued', { n }) : '';
  document.documentElement.dataset.outbox = String(n);
}

/** Where the phone is: its last fix, kept across restarts for the SOS and the report form. */
function noteHere(pos) {
  app.here = { lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy: pos.coords.accuracy, at: pos.timestamp };
  localStorage.setItem(HERE_KEY, JSON.stringify(app.here));
  const p = [app.here.lon, app.here.lat];
  app.map.set('me', [point(...p)]);
  app.leader?.onMyFix(p);
  app.tasks?.onMyFix(p);
}

/** The SOS: the last fix (or the one kept from before) sent now with `alarm: "sos"`. */
async function sos() {
  const here = app.here ?? JSON.parse(localStorage.getItem(HERE_KEY) ?? 'null');
  if (!here) {
    toast(t('sos_no_fix'));
    return;
  }
  const pos = { coords: { longitude: here.lon, latitude: here.lat, accuracy: here.accuracy }, timestamp: Date.now() };
  const item = { ...fixItem(app.me.device_id, pos), alarm: 'sos' };
  app.sos = { state: 'queued', time: item.time };
  document.documentElement.dataset.sos = 'queued';
  $('sos-button').classList.add('sent');
  await app.outbox.put({ lane: 'fix', tag: 'sos', item });
  if (!navigator.onLine) toast(t('sos_queued'));
}

function settled(entry, outcome) {
  if (entry.tag === 'fix' && outcome.ok) app.lastSent = { time: entry.item.time, seq: outcome.answer.seq, item: entry.item };
  if (entry.tag === 'sos') {
    app.sos = { state: outcome.ok ? 'sent' : 'refused', time: entry.item.time, seq: outcome.answer?.seq };
    document.documentElement.dataset.sos = app.sos.state;
    $('sos-button').classList.remove('sent');
    toast(outcome.ok ? t('sos_sent', { time: clock(Date.parse(entry.item.time)) }) : t('sos_refused', { reason: outcome.error.message }));
  } else if (entry.tag === 'ack') app.leader?.settled(entry, outcome);
  else if (entry.tag === 'step') app.tasks?.settled(entry, outcome);
  else if (entry.tag === 'report') app.reports?.settled(entry, outcome);
  else if (entry.tag === 'esc_ack') app.escalations?.settled(entry, outcome);
  else if (entry.tag === 'visit_fix') app.visits?.settled(entry, outcome);
}

function startFeed(token) {
  app.feed = new FieldFeed({
    token,
    onSnapshot: (devices) => {
      for (const d of devices) app.leader?.onPosition(d);
    },
    onEvent: (msg) => {
      if (msg.type === 'position') app.leader?.onPosition(msg.data);
      else if (msg.type === 'incident') app.tasks?.onIncident(msg);
      else if (msg.type === 'incident_gone') app.tasks?.onGone(msg);
      else if (msg.type === 'route') app.leader?.onRoute(msg);
      else if (msg.type === 'escalation') app.escalations?.onFeed(msg);
    },
    onState: (state) => {
      document.documentElement.dataset.feed = state;
      drawNet();
      if (state === 'live') {
        app.outbox.flush();
        // What changed while the socket was down: plans and tasks again.
        app.leader?.load();
        app.tasks?.load();
      }
    },
    tokenStillValid: async () => {
      try {
        await app.api.get('/api/v1/whoami');
        return true;
      } catch (e) {
        return !(e instanceof ApiFailure && e.status === 401);
      }
    },
    onRefused: () => signOut(t('login_bad')),
  });
  app.feed.start(null);
}

function startDevice() {
  app.sharing = new Sharing({
    onFix: noteHere,
    onKeep: (pos) => app.outbox.put({ lane: 'fix', tag: 'fix', item: fixItem(app.me.device_id, pos) }),
    onState: drawShare,
  });
  $('share-button').onclick = () => {
    if (app.sharing.on) app.sharing.stop();
    else app.sharing.start();
    localStorage.setItem(SHARE_KEY, app.sharing.on ? 'on' : 'off');
  };
  holdToFire($('sos-button'), sos);
  // A phone shares from the moment it signs in, unless its officer turned it off.
  if (localStorage.getItem(SHARE_KEY) !== 'off') app.sharing.start();
  drawShare();
}

/** Who the phone was last time with this token: a repeat start need not wait for the network. */
function keptMe(cred) {
  const kept = JSON.parse(localStorage.getItem(ME_KEY) ?? 'null');
  return kept?.token === cred.token ? kept.me : null;
}

async function start(cred) {
  document.documentElement.dataset.state = 'loading';
  app.api = new Api(cred.token);
  if (isSession(cred.token)) setInterval(() => app.api.post('/api/v1/sessions/renew').catch(() => {}), RENEW_EVERY_MS);
  try {
    app.me = keptMe(cred);
    if (app.me) {
      // Asked again behind the start: a key withdrawn meanwhile signs the phone out.
      whoami(cred).catch((e) => {
        if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) signOut(t('login_bad'));
      });
    } else app.me = await whoami(cred);
  } catch (e) {
    if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) {
      localStorage.removeItem(CRED_KEY);
      showLogin(t('login_bad'));
    } else showLogin(t('login_failed', { reason: e.message }));
    return;
  }
  app.role = roleOf(app.me);
  document.documentElement.dataset.role = app.role ?? 'none';
  drawWho();
  if (!app.role) {
    $('sheet').replaceChildren(el('p', 'note', t('role_unknown')));
    document.documentElement.dataset.state = 'ready';
    return;
  }
  buildTabs(app.role);
  app.map = new FieldMap('map', loadLayers);
  app.outbox = new Outbox({
    api: app.api,
    canSendFix: () => app.feed?.open ?? false,
    sendFix: (m) => app.feed?.send(m) ?? false,
    onSettled: settled,
    onChange: drawOutbox,
  });
  await app.outbox.open();
  const device = isDevice(app.me) ? app.me.device_id : null;
  const common = { api: app.api, outbox: app.outbox, map: app.map, toast };
  // What the server holds now (plans, tasks, reports) is asked for behind the start: the
  // panels show what the phone kept until it comes.
  if (app.role === 'leader') {
    app.leader = new Leader({ ...common, team: app.me.unit_id, me: device });
    app.leader.render();
    app.leader.load();
  }
  if (app.role === 'leader' || app.role === 'officer') {
    app.tasks = new Tasks({ ...common, me: device, unit: app.me.unit_id, here: () => (app.here ? [app.here.lon, app.here.lat] : null) });
    app.tasks.load();
    app.escalations = new Escalations(common);
    app.escalations.load();
    startFeed(cred.token);
  }
  if (app.role === 'grid') {
    app.reports = new Reports({ ...common, here: () => (app.here ? [app.here.lon, app.here.lat] : null) });
    app.reports.load();
  }
  if (hasVisits(app.me) && app.role !== 'leader') {
    app.visits = new Visits({ api: app.api, outbox: app.outbox, device, referrals: hasReferrals(app.me), toast });
    app.visits.load();
  }
  if (device) startDevice();
  else {
    // No device, nothing to share and no SOS to raise: what waits to be sent shows in
    // "my reports".
    $('actions').hidden = true;
  }
  drawNet();
  // Usable: signed in, the panels and the buttons live. The map follows (fieldmap.js).
  document.documentElement.dataset.state = 'ready';
  performance.mark('field-usable');
  app.map.loaded.then(() => {
    performance.mark('field-map');
    registerWorker();
  });
}

/** Forgets the key, what the phone kept for it (unsent items included) and the cached API answers. */
async function signOut(error) {
  // A person's session ends on the server too (when there is signal), so that the token
  // left on the phone signs no one in.
  if (app.api && isSession(app.api.token) && !error) await app.api.request('DELETE', '/api/v1/sessions').catch(() => {});
  app.feed?.stop();
  app.sharing?.stop();
  await app.outbox?.clear();
  app.outbox?.close();
  for (const k of [CRED_KEY, ME_KEY, HERE_KEY, 'liandong.field.sent']) localStorage.removeItem(k);
  if ('caches' in window) await caches.delete(API_CACHE);
  if (error) sessionStorage.setItem('liandong.field.error', error);
  location.reload();
}

function rerender() {
  setLang(currentLang());
  if (app.me) drawWho();
  drawNet();
  drawShare();
  app.leader?.render();
  app.tasks?.render(false);
  app.reports?.render();
  app.escalations?.render();
  app.visits?.render();
}

/**
 * Registers the service worker. On a first visit it is registered once the map is drawn
 * (or at the sign-in form), so that its installation takes the files the page has just
 * loaded from the browser's HTTP cache instead of downloading them a second time, over a
 * weak signal, while the page still waits for them.
 */
function registerWorker() {
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/field/sw.js', { scope: '/field/' }).catch(() => {});
}

function boot() {
  setLang(currentLang());
  $('lang-button').onclick = () => {
    setLang(currentLang() === 'en' ? 'zh' : 'en');
    rerender();
  };
  $('logout-button').onclick = () => signOut();
  addEventListener('online', drawNet);
  addEventListener('offline', drawNet);
  const scanned = fromFragment();
  const error = sessionStorage.getItem('liandong.field.error');
  sessionStorage.removeItem('liandong.field.error');
  if (scanned.code) {
    exchangeCode(scanned.code)
      .then((cred) => (cred ? start(cred) : showLogin(t('login_code_bad'))))
      .catch((e) => showLogin(t('login_failed', { reason: e.message })));
    return;
  }
  const cred = loadCred();
  if (!cred) showLogin(error);
  else {
    if (scanned.device) toast(t('login_scanned', { device: scanned.device }));
    start(cred);
  }
}

boot();
