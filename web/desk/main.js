// The judicial office's desk (司法所工作台) at /desk.html: the office's work in five views,
// the referrals the police posts hand over (转办队列), the mediation cases (调解案件), home
// visits (上门办理), the priority-1 incidents (重大警情, read only) and the community
// correction subjects with their sanctions (社区矫正).
//
// It signs in like the wall map (the same form, token and strings: web/wallmap/), and
// keeps itself current without a reload: every view's list is read again every few
// seconds, and at once when the live feed brings an alert or an incident, so that an
// operator at 3 a.m. and a mediator in the morning see the state as it is. The community
// correction view is read only when opened (every read of a tagged person is audited).

import { Api, ApiFailure, takeToken, forgetToken, isSession } from '/wallmap/api.js';
import { $ } from '/wallmap/dom.js';
import { initialLang, setLang, currentLang, t, addStrings, setTitle, clock, dateLine, featureName } from '/wallmap/i18n.js';
import { LiveFeed } from '/wallmap/feed.js';
import { wireSignIn } from '/wallmap/signin.js';
import zh from './strings.zh.js';
import en from './strings.en.js';
import { Referrals } from './referrals.js';
import { Mediation } from './mediation.js';
import { Visits } from './visits.js';
import { MajorIncidents } from './incidents.js';
import { Correction } from './correction.js';

/** How often every list is read again, milliseconds. */
const POLL_MS = 5000;
/** A burst of feed messages is one refresh, this long after the first. */
const FEED_REFRESH_MS = 300;
/** How often a signed-in desk renews its session (well inside the idle lifetime). */
const RENEW_EVERY_MS = 30 * 60 * 1000;

const VIEWS = ['referrals', 'mediation', 'visits', 'incidents', 'correction'];

/** What the page holds; also `window.desk`, for the end-to-end test and for debugging. */
const app = { api: null, me: null, feed: null, views: {}, current: null, polls: 0 };
window.desk = app;

addStrings('desk', { zh, en });
setLang(initialLang());
setTitle(() => t('desk.title'));
$('lang-button').addEventListener('click', switchLang);
$('logout-button').addEventListener('click', async () => {
  if (app.api && isSession(app.api.token)) await app.api.delete('/api/v1/sessions').catch(() => {});
  forgetToken();
  location.replace(location.pathname);
});
$('tabs').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-view]');
  if (b) show(b.dataset.view);
});
tick();
setInterval(tick, 1000);

const token = takeToken();
if (token) start(token);
else askSignIn();

function tick() {
  const now = Date.now();
  $('clock').textContent = `${dateLine(now)} ${clock(now)}`;
}

function askSignIn(error) {
  document.documentElement.dataset.state = 'login';
  $('login').hidden = false;
  $('login-error').hidden = !error;
  $('login-error').textContent = error ?? '';
  wireSignIn((tokenValue) => {
    $('login').hidden = true;
    start(tokenValue);
  });
}

async function start(tokenValue) {
  document.documentElement.dataset.state = 'loading';
  app.api = new Api(tokenValue);
  try {
    app.me = await app.api.get('/api/v1/whoami');
  } catch (e) {
    if (e instanceof ApiFailure && (e.status === 401 || e.status === 403)) {
      forgetToken();
      askSignIn(t('login_bad_token'));
    } else {
      askSignIn(t('login_failed', { reason: e.message }));
    }
    return;
  }
  if (isSession(tokenValue)) setInterval(() => app.api.post('/api/v1/sessions/renew').catch(() => {}), RENEW_EVERY_MS);
  $('who').textContent = t('desk.signed_in_as', { name: app.me.name ?? '', role: t(`desk.role.${app.me.role}`) });

  const posts = await postNames();
  const common = { api: app.api, me: () => app.me, toast, onCount: counted, postName: (id) => (posts.has(id) ? featureName(posts.get(id)) : id ?? '—') };
  app.views = {
    referrals: new Referrals({ ...common, body: $('view-referrals') }),
    mediation: new Mediation({ ...common, body: $('view-mediation') }),
    visits: new Visits({ ...common, body: $('view-visits') }),
    incidents: new MajorIncidents({ ...common, body: $('view-incidents') }),
    correction: new Correction({ ...common, body: $('view-correction') }),
  };
  const asked = new URLSearchParams(location.search).get('view');
  show(VIEWS.includes(asked) ? asked : app.me.role === 'partner' ? 'mediation' : 'referrals');
  await refresh();
  setInterval(refresh, POLL_MS);
  startFeed(tokenValue);
  document.documentElement.dataset.state = 'ready';
}

/** The posts' properties by id, from the map's posts layer (their names in both languages). */
async function postNames() {
  const names = new Map();
  try {
    const fc = await app.api.get('/api/v1/layers/posts');
    for (const f of fc.features ?? []) if (f.properties?.id) names.set(f.properties.id, f.properties);
  } catch (e) {
    console.warn('posts:', e.message);
  }
  return names;
}

/** Shows one view, and reads it at once. */
function show(name) {
  app.current = name;
  for (const b of document.querySelectorAll('#tabs button[data-view]')) b.classList.toggle('on', b.dataset.view === name);
  for (const v of document.querySelectorAll('main > section.view')) v.hidden = v.dataset.view !== name;
  const url = new URL(location.href);
  url.searchParams.set('view', name);
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  app.views[name]?.shown?.();
}

let refreshing = null;
/**
 * Reads every polled view again (the correction view only while it is shown; see the
 * file's comment). One refresh at a time: a feed message during one is folded into the
 * next.
 */
async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const views = Object.entries(app.views).filter(([name, v]) => v.polled || name === app.current);
    await Promise.all(views.map(([name, v]) => v.load().catch((e) => console.warn(`${name}:`, e.message))));
    app.polls += 1;
    document.documentElement.dataset.polls = String(app.polls);
  })();
  try {
    await refreshing;
  } finally {
    refreshing = null;
  }
}

let feedTimer = null;
/** The live feed: an alert, an incident or an escalation refreshes the lists at once. */
function startFeed(tokenValue) {
  app.feed = new LiveFeed({
    token: tokenValue,
    kinds: 'alerts,incidents',
    onSnapshot: () => {},
    onEvent: (msg) => {
      if (!['alert', 'incident', 'incident_gone', 'escalation'].includes(msg.type)) return;
      if (msg.type === 'alert' && msg.data?.priority === 1) toast(t('desk.feed_alert', { rule: t(`rule.${msg.data.rule}`) }));
      clearTimeout(feedTimer);
      feedTimer = setTimeout(refresh, FEED_REFRESH_MS);
    },
    onState: (state, attempt) => {
      const pill = $('feed-state');
      pill.className = `pill ${state}`;
      pill.dataset.i18n = state;
      pill.textContent = t(state);
      pill.dataset.attempt = String(attempt);
    },
    tokenStillValid: async () => {
      try {
        await app.api.get('/api/v1/whoami');
        return true;
      } catch (e) {
        return !(e instanceof ApiFailure && e.status === 401);
      }
    },
    onRefused: () => {
      forgetToken();
      askSignIn(t('login_bad_token'));
    },
  });
  // No viewport: the desk wants the alerts and incidents, not the map's positions.
  app.feed.start(null);
}

/** A view's count on its tab: how many items wait, and whether any is late. */
function counted(name, n, late = 0) {
  const badge = $(`badge-${name}`);
  if (!badge) return;
  badge.hidden = n === 0;
  badge.textContent = String(n);
  badge.classList.toggle('late', late > 0);
}

let toastTimer = null;
function toast(text) {
  $('toast').textContent = text;
  $('toast').hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => ($('toast').hidden = true), 5000);
}

function switchLang() {
  setLang(currentLang() === 'en' ? 'zh' : 'en');
  const url = new URL(location.href);
  url.searchParams.set('lang', currentLang());
  history.replaceState(null, '', url.pathname + url.search + url.hash);
  if (app.me) $('who').textContent = t('desk.signed_in_as', { name: app.me.name ?? '', role: t(`desk.role.${app.me.role}`) });
  for (const v of Object.values(app.views)) v.render();
  tick();
}
