// The wall map's side of the HTTP API: the operator's token and authenticated requests.
// Everything is fetched from the page's own origin; the page never names another host.

const TOKEN_KEY = 'liandong.token';

/**
 * The token to use: `?token=` in the address (then remembered and taken out of the
 * address bar, so it does not linger on a wall screen), else the remembered one.
 */
export function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given) {
    localStorage.setItem(TOKEN_KEY, given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    return given;
  }
  return localStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/** Whether a token is a signed-in person's session (not a duty token from the config). */
export function isSession(token) {
  return typeof token === 'string' && token.startsWith('lds_');
}

/**
 * Signs a person in with their id and password; answers the session
 * `{ token, expires_ms, person }`. A refusal throws an `ApiFailure`, with `retryAfter`
 * (seconds) when there were too many failed sign-ins.
 */
export async function signIn(personId, password) {
  let res;
  try {
    res = await fetch('/api/v1/sessions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ person_id: personId, password }),
    });
  } catch (e) {
    throw new ApiFailure(0, String(e.message ?? e));
  }
  const json = await res.json().catch(() => null);
  if (!res.ok) {
    const failure = new ApiFailure(res.status, json?.error?.message ?? `${res.status}`, json?.error?.field);
    failure.retryAfter = Number(res.headers.get('Retry-After')) || null;
    throw failure;
  }
  return json;
}

/** An API failure with the server's status and the field it named. */
export class ApiFailure extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body) {
    const init = { method, headers: { Authorization: `Bearer ${this.token}` } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiFailure(0, String(e.message ?? e));
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON: the status says enough.
    }
    if (!res.ok) {
      const err = json?.error;
      throw new ApiFailure(res.status, err?.message ?? `${res.status} ${res.statusText}`, err?.field);
    }
    return json;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body) {
    return this.request('POST', path, body);
  }

  delete(path) {
    return this.request('DELETE', path);
  }

  /**
   * An image the API serves only with the token (a report's photo), as a `data:` URL: the
   * page's policy allows `data:` images but not `blob:` ones, and a token in an `<img>`
   * address would linger in the server's access log.
   */
  async dataUrl(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: `Bearer ${this.token}` } });
    } catch (e) {
      throw new ApiFailure(0, String(e.message ?? e));
    }
    if (!res.ok) throw new ApiFailure(res.status, `${res.status} ${res.statusText}`);
    const blob = await res.blob();
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(new ApiFailure(0, 'unreadable image'));
      reader.readAsDataURL(blob);
    });
  }
}
