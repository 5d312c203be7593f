// The sign-in form, shared by the wall map and the judicial office's desk (web/desk.html):
// a person signs in with their id and password and the page is given the session's
// token, remembered in this browser. The form's markup is the page's own (the same ids,
// `signin-form`, `signin-person`, `signin-password`, `signin-error`); this wires it.

import { $ } from './dom.js';
import { signIn, saveToken } from './api.js';
import { t } from './i18n.js';

/**
 * Waits for the person to sign in on the page's form, then calls `onSession(token)`
 * with the new session's token (already remembered). A refusal is shown under the form:
 * a wrong id or password, too many attempts (with the seconds to wait), no server.
 */
export function wireSignIn(onSession) {
  $('signin-error').hidden = true;
  $('signin-person').focus();
  $('signin-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const person = $('signin-person').value.trim();
    const password = $('signin-password').value;
    if (!person || !password) return;
    try {
      const session = await signIn(person, password);
      $('signin-password').value = '';
      saveToken(session.token);
      onSession(session.token);
    } catch (e) {
      $('signin-error').hidden = false;
      $('signin-error').textContent =
        e.status === 429 ? t('signin_limited', { seconds: e.retryAfter ?? '' })
          : e.status === 401 || e.status === 400 ? t('signin_wrong')
            : t('login_failed', { reason: e.message });
    }
  };
}
