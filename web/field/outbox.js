// What the phone has to send, kept in IndexedDB until the server has it: fixes (sent on
// the live websocket) and requests (steps, reports, route acknowledgements, over HTTP).
// Each lane sends in the order things were made, one at a time, and removes an entry only
// when the server's answer says it is stored (a fix's `ack` with its `seq`, a request's
// 2xx), so a fix or a step made without signal is sent once the signal is back, and a
// page closed in between loses nothing. Resending is safe: the server answers a repeated
// fix (same device, same fix time) with the original `seq`, a repeated step with
// `"repeat": true` and a repeated report from its fingerprint.

const DB_NAME = 'liandong-field';
const STORE = 'outbox';
/** How long a sent fix waits for its `ack` before the lane tries again later. */
const ACK_TIMEOUT_MS = 10_000;
/** How often a lane that stopped (no signal, no socket) tries again. */
const RETRY_MS = 4000;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
  return request(req);
}

/** A failure the server gave a final answer to (a 4xx other than 408 and 429): resending cannot help. */
function isFinal(e) {
  return e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429;
}

export class Outbox {
  /**
   * @param {object} o
   * @param {import('/wallmap/api.js').Api} o.api
   * @param {() => boolean} o.canSendFix whether the live socket is open now
   * @param {(message: object) => boolean} o.sendFix sends a `position` message on the socket
   * @param {(entry: object, outcome: {ok: boolean, answer?: object, error?: Error}) => void} o.onSettled
   * @param {(counts: {fix: number, http: number}) => void} o.onChange
   */
  constructor(o) {
    this.o = o;
    this.db = null;
    this.waiting = new Map();
    this.busy = { fix: false, http: false };
    this.timer = null;
  }

  async open() {
    this.db = await openDb();
    this.timer = setInterval(() => this.flush(), RETRY_MS);
    addEventListener('online', () => this.flush());
    await this.report();
  }

  store(mode) {
    return this.db.transaction(STORE, mode).objectStore(STORE);
  }

  /** Keeps `entry` (`{lane: 'fix'|'http', …}`) and tries to send it at once; answers its id. */
  async put(entry) {
    const id = await request(this.store('readwrite').add({ ...entry, made_ms: Date.now() }));
    await this.report();
    this.flush();
    return id;
  }

  async entries(lane) {
    const all = await request(this.store('readonly').getAll());
    return all.filter((e) => !lane || e.lane === lane).sort((a, b) => a.id - b.id);
  }

  async remove(id) {
    await request(this.store('readwrite').delete(id));
    await this.report();
  }

  async clear() {
    if (this.db) await request(this.store('readwrite').clear());
    await this.report();
  }

  close() {
    clearInterval(this.timer);
    for (const w of this.waiting.values()) w.resolve({ type: 'error', reason: 'closed' });
    this.db?.close();
    this.db = null;
  }

  async report() {
    if (!this.db) return;
    const all = await this.entries();
    this.o.onChange({ fix: all.filter((e) => e.lane === 'fix').length, http: all.filter((e) => e.lane === 'http').length });
  }

  flush() {
    if (!this.db) return;
    this.flushLane('fix', (e) => this.sendFix(e));
    this.flushLane('http', (e) => this.sendHttp(e));
  }

  /** Sends the lane's entries in order until one cannot be sent now. */
  async flushLane(lane, send) {
    if (this.busy[lane] || !navigator.onLine) return;
    this.busy[lane] = true;
    try {
      for (;;) {
        if (!this.db || !navigator.onLine) return;
        const [next] = await this.entries(lane);
        if (!next) return;
        const sent = await send(next);
        if (!sent) return;
      }
    } finally {
      this.busy[lane] = false;
    }
  }

  /** The socket's answer to a fix, by the message id it was sent with. */
  reply(msg) {
    const w = this.waiting.get(msg.id);
    if (w) {
      this.waiting.delete(msg.id);
      w.resolve(msg);
    }
  }

  async sendFix(entry) {
    if (!this.o.canSendFix()) return false;
    const answer = new Promise((resolve) => {
      this.waiting.set(entry.id, { resolve });
      setTimeout(() => {
        if (this.waiting.delete(entry.id)) resolve(null);
      }, ACK_TIMEOUT_MS);
    });
    if (!this.o.sendFix({ type: 'position', id: entry.id, ...entry.item })) {
      this.waiting.delete(entry.id);
      return false;
    }
    const msg = await answer;
    if (!msg) return false;
    if (msg.type === 'ack' && typeof msg.seq === 'number') {
      await this.remove(entry.id);
      this.o.onSettled(entry, { ok: true, answer: msg });
      return true;
    }
    if (msg.type === 'error' && msg.reason !== 'closed') {
      // Refused for what it says (a field the server names): resending cannot help.
      await this.remove(entry.id);
      this.o.onSettled(entry, { ok: false, error: new Error(`${msg.field}: ${msg.reason}`) });
      return true;
    }
    return false;
  }

  async sendHttp(entry) {
    try {
      const answer = await this.o.api.request(entry.method, entry.path, entry.body);
      await this.remove(entry.id);
      this.o.onSettled(entry, { ok: true, answer });
      return true;
    } catch (e) {
      if (!isFinal(e)) return false;
      await this.remove(entry.id);
      this.o.onSettled(entry, { ok: false, error: e });
      return true;
    }
  }
}
