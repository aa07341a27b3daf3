/* The invitation page (/invite#<token>): says which workspace invites which e-mail, then
 * either makes the account (name and a new password) or takes an existing account's password,
 * and lands in the inbox signed in. Accepting asks for what signing in asks for: an account
 * with two-factor on gives a code, an admin of a workspace that requires it enrols first
 * (twofactor.js, as the inbox's sign-in). The token comes from the URL's fragment, which
 * browsers never send to a server or in a Referer; it travels only in request bodies. */
import { api, errorText, ib, translatePage, translator } from './common.js';
import strings from './account-strings.js';
import { codeStep, enrol } from './twofactor.js';

const t = translator(strings);
const token = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, '', location.pathname); // the token leaves the address bar and history
addEventListener('hashchange', () => location.reload()); // another link opened in this tab
translatePage(t);

const form = ib('invite-form'), error = ib('invite-error'), submit = ib('invite-submit');
const name = ib('invite-name'), password = ib('invite-password');
let invitation = null;

function say(text) {
  error.textContent = text || '';
  error.hidden = !text;
}

function invalid() {
  form.hidden = true;
  ib('invite-invalid').hidden = false;
}

async function open() {
  if (!token) return invalid();
  let r;
  try {
    r = await api('POST', '/api/invitations/open', { token });
  } catch (e) {
    form.hidden = false;
    return say(t('unreachable'));
  }
  if (!r.ok) return invalid();
  invitation = r.data;
  const fresh = !invitation.has_account;
  ib('invite-lead').textContent = t('invite-lead', {
    workspace: invitation.workspace_name, email: invitation.email, role: t(`role-${invitation.role}`),
  });
  ib('invite-how').textContent = t(fresh ? 'invite-new' : 'invite-existing');
  ib('invite-email').value = invitation.email; // for the browser's password manager
  ib('invite-name-field').hidden = !fresh;
  ib('invite-rule').hidden = !fresh;
  ib('invite-password-label').textContent = t(fresh ? 'new-password' : 'password');
  password.autocomplete = fresh ? 'new-password' : 'current-password';
  form.hidden = false;
  (fresh ? name : password).focus();
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const fresh = !invitation.has_account;
  if (fresh && !name.value.trim()) { name.focus(); return say(t('need-name')); }
  if (!password.value) { password.focus(); return say(t('need-password')); }
  if (fresh && password.value.length < 12) { password.focus(); return say(t('password-short')); }
  say('');
  submit.disabled = true;
  try {
    const body = { token, password: password.value };
    if (fresh) body.name = name.value.trim();
    const r = await api('POST', '/api/invitations/accept', body);
    if (r.ok && r.data.ticket) return secondStep(r.data);
    if (r.ok) { location.replace('/'); return; }
    if (r.status === 410) return invalid();
    say(errorText(r, t('could-not')));
    password.focus();
  } catch (err) {
    say(t('unreachable'));
  } finally {
    submit.disabled = false;
  }
});

/* A member now, and the second step before a session: the membership stays whatever
 * happens here; "Back" (or a spent ticket) leads to the inbox's sign-in. */
function secondStep(challenge) {
  form.hidden = true;
  const step = ib('invite-step');
  step.hidden = false;
  const done = () => location.replace('/');
  const back = () => location.replace('/');
  if (challenge.two_factor_setup_required) {
    enrol(step, { ticket: challenge.ticket, required: true, onDone: done, onBack: back });
  } else {
    codeStep(step, challenge.ticket, { onSession: done, onBack: back });
  }
}

open();
