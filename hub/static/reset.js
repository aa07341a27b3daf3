/* The password-reset page. /reset asks for an e-mail (the answer is the same whatever it is);
 * /reset#<token>, the e-mailed link, chooses the new password. The token comes from the URL's
 * fragment, which browsers never send to a server or in a Referer; it travels only in the
 * request body. */
import { api, errorText, ib, lang, translatePage, translator } from './common.js';
import strings from './account-strings.js';

const t = translator(strings);
const token = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, '', location.pathname); // the token leaves the address bar and history
addEventListener('hashchange', () => location.reload()); // another link opened in this tab
translatePage(t);

const ask = ib('reset-ask-form'), choose = ib('reset-form');

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

function asking(invalid) {
  choose.hidden = true;
  ib('reset-invalid').hidden = !invalid;
  ask.hidden = false;
  ib('reset-email').focus();
}

ask.addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = ib('reset-email').value.trim(), error = ib('reset-ask-error');
  say(ib('reset-sent'), '');
  if (!email) return say(error, t('need-email'));
  say(error, '');
  ib('reset-send').disabled = true;
  try {
    const r = await api('POST', '/api/password-reset', { email, language: lang() });
    if (r.ok) say(ib('reset-sent'), t('reset-sent'));
    else say(error, errorText(r, t('could-not')));
  } catch (err) {
    say(error, t('unreachable'));
  } finally {
    ib('reset-send').disabled = false;
  }
});

choose.addEventListener('submit', async (e) => {
  e.preventDefault();
  const password = ib('reset-password'), error = ib('reset-error');
  if (password.value.length < 12) { password.focus(); return say(error, t('password-short')); }
  if (password.value !== ib('reset-repeat').value) { ib('reset-repeat').focus(); return say(error, t('passwords-differ')); }
  say(error, '');
  ib('reset-save').disabled = true;
  try {
    const r = await api('POST', '/api/password-reset/confirm', { token, new_password: password.value });
    if (r.ok) { choose.hidden = true; ib('reset-done').hidden = false; return; }
    if (r.status === 410) return asking(true);
    say(error, errorText(r, t('could-not')));
    password.focus();
  } catch (err) {
    say(error, t('unreachable'));
  } finally {
    ib('reset-save').disabled = false;
  }
});

if (token) { choose.hidden = false; ib('reset-password').focus(); } else asking(false);
