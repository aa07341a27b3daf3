/* "Change password": a dialog in the inbox header. The server's password rule
 * (hub/accounts/passwords.py: 12 characters, not guessable from common passwords, patterns or
 * the person's own e-mail and name) is the authority: its `weak_password` message is shown as
 * it comes. Here only the length and the repeat are checked before asking. On success the
 * server ends every other session and gives this browser a new one (a new CSRF token). */
import { api, errorText, ib, session } from './common.js';

const MIN_PASSWORD = 12;

export function passwordDialog(t) {
  const dialog = ib('password-dialog'), form = ib('password-form'), error = ib('password-error');
  const done = ib('password-done');
  const say = (el, text) => { el.textContent = text || ''; el.hidden = !text; };

  ib('password-open').addEventListener('click', () => {
    form.reset();
    say(error, ''); say(done, '');
    dialog.showModal();
    ib('password-current').focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const current = ib('password-current').value, next = ib('password-new').value;
    say(done, '');
    if (!current) { ib('password-current').focus(); return say(error, t('password-current-needed')); }
    if (next.length < MIN_PASSWORD) { ib('password-new').focus(); return say(error, t('password-short')); }
    if (next !== ib('password-repeat').value) { ib('password-repeat').focus(); return say(error, t('password-mismatch')); }
    const submit = ib('password-submit');
    submit.disabled = true;
    try {
      const body = { current_password: current, new_password: next };
      const r = await api('POST', '/api/me/password', body, { quiet401: true });
      if (!r.ok) {
        ib(r.status === 401 ? 'password-current' : 'password-new').focus();
        return say(error, errorText(r, t('password-failed')));
      }
      session.set(r.data.csrf_token);
      form.reset();
      say(error, '');
      say(done, t('password-changed'));
    } catch (err) {
      say(error, t('password-failed'));
    } finally {
      submit.disabled = false;
    }
  });
}
