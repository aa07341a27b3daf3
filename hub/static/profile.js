/* The Profile dialog, the same in the inbox and the console: the agent's name (PATCH
 * /api/me/profile; the e-mail is shown, not changed), their password (POST /api/me/password,
 * whose rule the server decides: its reason is shown as it comes) and their sessions in this
 * workspace (end one, or all the others). Built here, so a page only gives the button that
 * opens it. Text from the server is set with textContent. */
import { api, el, errorText, session, translator } from './common.js';
import strings from './profile-strings.js';
import { sessionItems } from './session-list.js';

const t = translator(strings);
const MIN_PASSWORD = 12;

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

function note(cls, name, role) {
  const p = el('p', cls);
  p.dataset.ib = name;
  p.setAttribute('role', role);
  p.hidden = true;
  return p;
}

function labelled(text, control, name, help) {
  control.dataset.ib = name;
  const label = el('label');
  label.append(el('span', null, text), control);
  if (help) {
    const p = el('p', 'help', help);
    p.id = `${name}-help`;
    control.setAttribute('aria-describedby', p.id);
    return [label, p];
  }
  return [label];
}

function box(type, attrs = {}) {
  const node = el('input');
  node.type = type;
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
  return node;
}

function submitButton(text, name) {
  const b = el('button', 'primary', text);
  b.type = 'submit';
  b.dataset.ib = name;
  return b;
}

/* Opens from `opener`; `onName(name)` tells the page the name it shows changed. */
export function profileDialog(opener, { onName = () => {} } = {}) {
  opener.textContent = t('profile');
  const dialog = el('dialog', 'profile-dialog');
  dialog.dataset.ib = 'profile-dialog';
  dialog.setAttribute('aria-labelledby', 'profile-title');
  const top = el('header');
  const title = el('h2', null, t('profile'));
  title.id = 'profile-title';
  const closer = el('form');
  closer.method = 'dialog';
  const close = el('button', 'ghost', t('close'));
  close.type = 'submit';
  close.dataset.ib = 'profile-close';
  closer.append(close);
  top.append(title, closer);

  // Name
  const name = box('text', { maxlength: '200', autocomplete: 'name', required: '' });
  const email = el('output');
  email.dataset.ib = 'profile-email';
  email.id = 'profile-email';
  const emailLabel = el('label', null, t('profile-email'));
  emailLabel.htmlFor = 'profile-email';
  const nameError = note('error', 'profile-error', 'alert');
  const nameDone = note('ok', 'profile-saved', 'status');
  const nameForm = el('form', 'profile-part');
  nameForm.noValidate = true;
  nameForm.dataset.ib = 'profile-form';
  nameForm.append(
    ...labelled(t('profile-name'), name, 'profile-name', t('profile-name-help')),
    emailLabel, email, el('p', 'help', t('profile-email-fixed')),
    nameError, nameDone, submitButton(t('profile-save'), 'profile-save'),
  );

  // Password
  const current = box('password', { autocomplete: 'current-password', maxlength: '1024' });
  const next = box('password', { autocomplete: 'new-password', maxlength: '1024' });
  const again = box('password', { autocomplete: 'new-password', maxlength: '1024' });
  const passwordError = note('error', 'profile-password-error', 'alert');
  const passwordDone = note('ok', 'profile-password-done', 'status');
  const passwordForm = el('form', 'profile-part');
  passwordForm.noValidate = true;
  passwordForm.dataset.ib = 'profile-password-form';
  passwordForm.setAttribute('aria-labelledby', 'profile-password-title');
  const passwordTitle = el('h3', null, t('password'));
  passwordTitle.id = 'profile-password-title';
  passwordForm.append(
    passwordTitle,
    ...labelled(t('password-current'), current, 'profile-password-current'),
    ...labelled(t('password-new'), next, 'profile-password-new', t('password-help')),
    ...labelled(t('password-repeat'), again, 'profile-password-repeat'),
    passwordError, passwordDone, submitButton(t('password-save'), 'profile-password-submit'),
  );

  // Sessions
  const sessionsPart = el('section', 'profile-part');
  sessionsPart.setAttribute('aria-labelledby', 'profile-sessions-title');
  const sessionsTitle = el('h3', null, t('sessions'));
  sessionsTitle.id = 'profile-sessions-title';
  const list = el('ul', 'profile-sessions');
  list.dataset.ib = 'profile-sessions';
  const sessionsError = note('error', 'profile-sessions-error', 'alert');
  const endOthers = el('button', 'ghost', t('session-end-others'));
  endOthers.type = 'button';
  endOthers.dataset.ib = 'profile-sessions-end-others';
  sessionsPart.append(sessionsTitle, el('p', 'help', t('sessions-help')), list, sessionsError, endOthers);

  dialog.append(top, nameForm, passwordForm, sessionsPart);
  document.body.append(dialog);

  const failed = (node, r) => say(node, t('failed', { why: errorText(r, String(r.status || '')) }));

  async function loadProfile() {
    const r = await api('GET', '/api/me/profile').catch(() => ({ ok: false }));
    if (!r.ok) return failed(nameError, r);
    name.value = r.data.name;
    email.textContent = r.data.email;
  }

  async function loadSessions() {
    say(sessionsError, '');
    const r = await api('GET', '/api/me/sessions').catch(() => ({ ok: false }));
    if (!r.ok) return failed(sessionsError, r);
    list.replaceChildren(...sessionItems(r.data.items, t, { item: 'profile-session', end: 'profile-session-end' },
      { changed: loadSessions, failed: (done) => failed(sessionsError, done) }));
    endOthers.hidden = !r.data.items.some((s) => !s.current);
  }

  nameForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(nameDone, '');
    const wanted = name.value.trim();
    if (!wanted) { name.focus(); return say(nameError, t('profile-need-name')); }
    const r = await api('PATCH', '/api/me/profile', { name: wanted }).catch(() => ({ ok: false }));
    if (!r.ok) { name.focus(); return failed(nameError, r); }
    say(nameError, '');
    name.value = r.data.name;
    say(nameDone, t('profile-saved'));
    onName(r.data.name);
  });

  passwordForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(passwordDone, '');
    if (!current.value) { current.focus(); return say(passwordError, t('password-current-needed')); }
    if (next.value.length < MIN_PASSWORD) { next.focus(); return say(passwordError, t('password-short')); }
    if (next.value !== again.value) { again.focus(); return say(passwordError, t('password-mismatch')); }
    const body = { current_password: current.value, new_password: next.value };
    const r = await api('POST', '/api/me/password', body, { quiet401: true }).catch(() => ({ ok: false }));
    if (!r.ok) {
      (r.status === 401 ? current : next).focus();
      return say(passwordError, errorText(r, t('failed', { why: r.status || '' }))); // the rule's reason as it comes
    }
    session.set(r.data.csrf_token);
    passwordForm.reset();
    say(passwordError, '');
    say(passwordDone, t('password-changed'));
    loadSessions();
  });

  endOthers.addEventListener('click', async () => {
    const r = await api('DELETE', '/api/me/sessions').catch(() => ({ ok: false }));
    if (!r.ok) return failed(sessionsError, r);
    loadSessions();
  });

  opener.addEventListener('click', () => {
    [nameError, nameDone, passwordError, passwordDone].forEach((n) => say(n, ''));
    passwordForm.reset();
    dialog.showModal();
    name.focus();
    loadProfile();
    loadSessions();
  });
}
