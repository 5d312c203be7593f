// The live feed client: one websocket to `/api/v1/live`, reconnected by itself.
//
// The server numbers every message (`seq`). The client remembers the highest number it
// has applied and reconnects with `since=` that number, so the server replays exactly
// what was missed while the screen was offline (then says `replayed`), or sends a fresh
// snapshot with a `reason` when the gap cannot be replayed. Snapshots come in parts of
// at most 16 KiB; the parts are gathered and applied at once, so the map never shows
// half a snapshot.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class LiveFeed {
  /**
   * @param {object} o
   * @param {string} o.token the operator's token (sent as `?token=`: browsers cannot set
   *   headers on a websocket)
   * @param {(devices: object[], reason: string|null) => void} o.onSnapshot
   * @param {(msg: object) => void} o.onEvent position, alert, alert_ack, incident,
   *   incident_gone and route messages
   * @param {(msg: object) => void} [o.onNotice] notices outside the sequence (`hotspots`)
   * @param {(state: 'connecting'|'live'|'offline', attempt: number) => void} o.onState
   * @param {() => Promise<boolean>} o.tokenStillValid asked after a failed connection:
   *   a refused token must not be retried for ever
   * @param {() => void} o.onRefused
   * @param {string} [o.kinds] what to be sent (`alerts,incidents`; the server's default,
   *   everything, when absent): the judicial office's desk needs no positions
   */
  constructor(o) {
    this.o = o;
    this.lastSeq = null;
    this.bbox = null;
    this.ws = null;
    this.attempt = 0;
    this.parts = [];
    this.stopped = false;
    this.timer = null;
  }

  start(bbox) {
    this.bbox = bbox;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'page closed');
  }

  /** Changes the viewport without reconnecting; the server answers with a new snapshot. */
  subscribe(bbox) {
    const same = this.bbox && bbox.every((v, i) => Math.abs(v - this.bbox[i]) < 1e-6);
    this.bbox = bbox;
    if (!same && this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'subscribe', bbox }));
    }
  }

  url() {
    const p = new URLSearchParams({ token: this.o.token });
    if (this.bbox) p.set('bbox', this.bbox.map((v) => v.toFixed(5)).join(','));
    if (this.lastSeq !== null) p.set('since', String(this.lastSeq));
    if (this.o.kinds) p.set('kinds', this.o.kinds);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    return `${scheme}://${location.host}/api/v1/live?${p}`;
  }

  connect() {
    if (this.stopped) return;
    this.o.onState(this.attempt === 0 ? 'connecting' : 'offline', this.attempt);
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.parts = [];
      this.o.onState('live', 0);
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(msg);
    };
    ws.onclose = async () => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.attempt += 1;
      this.o.onState('offline', this.attempt);
      // A socket that never opened may have been refused for its token (401 before the
      // upgrade, which a browser cannot see): ask the HTTP API before trying again.
      if (!opened && this.attempt >= 2) {
        const valid = await this.o.tokenStillValid().catch(() => true);
        if (!valid) {
          this.stopped = true;
          this.o.onRefused();
          return;
        }
      }
      const delay = BACKOFF_MS[Math.min(this.attempt - 1, BACKOFF_MS.length - 1)];
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  handle(msg) {
    switch (msg.type) {
      case 'snapshot':
      case 'resync': {
        if (msg.part === 1) this.parts = [];
        this.parts.push(...(msg.devices ?? []));
        if (msg.part >= msg.parts) {
          const devices = this.parts;
          this.parts = [];
          // Ahead of the feed: the server's numbering is behind what this screen last saw
          // (a store restored from a backup), so its snapshot's number is the one to go on
          // from; keeping the higher one would drop every message until it caught up.
          this.lastSeq = msg.reason === 'since_ahead_of_feed' ? msg.seq : Math.max(this.lastSeq ?? 0, msg.seq);
          this.o.onSnapshot(devices, msg.reason ?? (msg.type === 'resync' ? 'resync' : null));
        }
        return;
      }
      case 'replayed':
        this.lastSeq = Math.max(this.lastSeq ?? 0, msg.seq);
        return;
      case 'position':
      case 'alert':
      case 'alert_ack':
      case 'incident':
      case 'incident_gone':
      case 'route':
      case 'escalation':
        // The server guarantees no duplicate at the replay seam; the check costs nothing
        // and keeps a message from being applied twice whatever happens.
        if (this.lastSeq !== null && msg.seq <= this.lastSeq) return;
        this.lastSeq = msg.seq;
        this.o.onEvent(msg);
        return;
      case 'hotspots':
        // A notice outside the sequence (no `seq`, never replayed): a new analysis.
        this.o.onNotice?.(msg);
        return;
      default:
        // ack, error and future message kinds: nothing for the wall map to do.
        return;
    }
  }
}
