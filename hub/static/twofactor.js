/* Two-factor sign-in, shared by the inbox and the admin console: the code step after the
 * password, enrolment (QR code, secret, first code, then the recovery codes shown once), and a
 * user's own settings (turn off, new recovery codes). It builds its own DOM and only ever sets
 * text; the QR code is the server's SVG shown through an <img> data: URL, where nothing of it
 * can run. Its strings are its own, in English and Turkish. */
import { api, el, errorText, stamp, translator } from './common.js';

export const t = translator({
  en: {
    'tf-title': 'Two-factor sign-in',
    'tf-code-help': 'Enter the 6-digit code from your authenticator app.',
    'tf-recovery-help': 'Enter one of your recovery codes. Each works once.',
    'tf-code': 'Code', 'tf-recovery-code': 'Recovery code',
    'tf-use-recovery': 'Use a recovery code instead', 'tf-use-code': 'Use the app’s code instead',
    'tf-verify': 'Verify', back: 'Back', 'tf-failed': 'That did not work.',
    'tf-setup-required': 'Your workspace requires two-factor sign-in for admins. Set it up to continue.',
    'tf-scan': 'Scan this QR code with an authenticator app (Google Authenticator, 1Password, Authy…).',
    'tf-qr': 'QR code for your authenticator app', 'tf-key': 'Or type this key in by hand:',
    'tf-first-code': 'Code from the app', 'tf-confirm': 'Turn on',
    'tf-codes-title': 'Your recovery codes',
    'tf-codes-help': 'Keep them somewhere safe. Each signs you in once if you lose your phone. They are shown only now.',
    copy: 'Copy', copied: 'Copied.', download: 'Download', 'tf-codes-done': 'I have saved them',
    'tf-off': 'Two-factor sign-in is off. Turn it on to be asked for a code from your phone after your password.',
    'tf-on': 'Two-factor sign-in is on since {when}. Recovery codes left: {n}.',
    'tf-required': 'Your workspace requires it for admins.',
    'tf-enable': 'Set up two-factor sign-in', password: 'Password',
    'tf-disable': 'Turn off', 'tf-regenerate': 'New recovery codes',
    'tf-disable-help': 'To turn it off, enter your password and a code.',
    'tf-regenerate-help': 'New codes replace the old ones. Enter a code to get them.',
    'tf-disabled': 'Two-factor sign-in is off.', close: 'Close', security: 'Security',
  },
  tr: {
    'tf-title': 'İki adımlı giriş',
    'tf-code-help': 'Doğrulama uygulamanızdaki 6 haneli kodu girin.',
    'tf-recovery-help': 'Kurtarma kodlarınızdan birini girin. Her biri bir kez çalışır.',
    'tf-code': 'Kod', 'tf-recovery-code': 'Kurtarma kodu',
    'tf-use-recovery': 'Bunun yerine kurtarma kodu kullan', 'tf-use-code': 'Bunun yerine uygulamanın kodunu kullan',
    'tf-verify': 'Doğrula', back: 'Geri', 'tf-failed': 'Olmadı.',
    'tf-setup-required': 'Çalışma alanınız yöneticiler için iki adımlı giriş istiyor. Devam etmek için kurun.',
    'tf-scan': 'Bu QR kodunu bir doğrulama uygulamasıyla (Google Authenticator, 1Password, Authy…) tarayın.',
    'tf-qr': 'Doğrulama uygulamanız için QR kodu', 'tf-key': 'Ya da bu anahtarı elle yazın:',
    'tf-first-code': 'Uygulamadaki kod', 'tf-confirm': 'Aç',
    'tf-codes-title': 'Kurtarma kodlarınız',
    'tf-codes-help': 'Güvenli bir yerde saklayın. Telefonunuzu kaybederseniz her biri bir kez giriş yapmanızı sağlar. Yalnızca şimdi gösterilirler.',
    copy: 'Kopyala', copied: 'Kopyalandı.', download: 'İndir', 'tf-codes-done': 'Sakladım',
    'tf-off': 'İki adımlı giriş kapalı. Açarsanız paroladan sonra telefonunuzdan bir kod istenir.',
    'tf-on': 'İki adımlı giriş {when} tarihinden beri açık. Kalan kurtarma kodu: {n}.',
    'tf-required': 'Çalışma alanınız bunu yöneticiler için istiyor.',
    'tf-enable': 'İki adımlı girişi kur', password: 'Parola',
    'tf-disable': 'Kapat', 'tf-regenerate': 'Yeni kurtarma kodları',
    'tf-disable-help': 'Kapatmak için parolanızı ve bir kod girin.',
    'tf-regenerate-help': 'Yeni kodlar eskilerinin yerini alır. Almak için bir kod girin.',
    'tf-disabled': 'İki adımlı giriş kapalı.', close: 'Kapat', security: 'Güvenlik',
  },
});

function field(label, name, attrs) {
  const wrap = el('label');
  wrap.append(el('span', null, label));
  const input = el('input');
  input.dataset.ib = name;
  Object.entries(attrs).forEach(([k, v]) => input.setAttribute(k, v));
  wrap.append(input);
  return [wrap, input];
}

function button(cls, name, text, type = 'button') {
  const b = el('button', cls, text);
  b.type = type;
  b.dataset.ib = name;
  return b;
}

function errorLine() {
  const p = el('p', 'error');
  p.setAttribute('role', 'alert');
  p.hidden = true;
  return p;
}

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

const CODE = { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '8', pattern: '[0-9 ]*', spellcheck: 'false' };
const RECOVERY = { autocomplete: 'off', maxlength: '40', spellcheck: 'false' };

/* The second step of signing in, drawn into `host`: onSession(answer) once a code (or a
 * recovery code) is accepted; onBack(message) to start again from the password. */
export function codeStep(host, ticket, { onSession, onBack }) {
  const form = el('form', 'two-factor');
  form.noValidate = true;
  form.dataset.ib = 'tf-step';
  const help = el('p', 'muted', t('tf-code-help'));
  const [codeLabel, code] = field(t('tf-code'), 'tf-code', CODE);
  const toggle = button('link', 'tf-toggle', t('tf-use-recovery'));
  const error = errorLine();
  const submit = button('primary', 'tf-verify', t('tf-verify'), 'submit');
  const back = button('ghost', 'tf-back', t('back'));
  let recovery = false;
  form.append(el('h1', null, t('tf-title')), help, codeLabel, toggle, error, submit, back);
  host.replaceChildren(form);
  code.focus();

  toggle.addEventListener('click', () => {
    recovery = !recovery;
    help.textContent = t(recovery ? 'tf-recovery-help' : 'tf-code-help');
    codeLabel.firstChild.textContent = t(recovery ? 'tf-recovery-code' : 'tf-code');
    toggle.textContent = t(recovery ? 'tf-use-code' : 'tf-use-recovery');
    Object.entries(recovery ? RECOVERY : CODE).forEach(([k, v]) => code.setAttribute(k, v));
    if (recovery) { code.removeAttribute('inputmode'); code.removeAttribute('pattern'); }
    code.value = '';
    code.focus();
  });
  back.addEventListener('click', () => onBack(''));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = code.value.trim();
    if (!value) return code.focus();
    submit.disabled = true;
    say(error, '');
    try {
      const body = recovery ? { ticket, recovery_code: value } : { ticket, code: value.replace(/\s/g, '') };
      const r = await api('POST', '/api/auth/login/two-factor', body);
      if (r.ok) return onSession(r.data);
      const reason = r.data && r.data.error && r.data.error.code;
      if (reason === 'ticket_invalid' || reason === 'too_many_attempts') return onBack(errorText(r, t('tf-failed')));
      say(error, errorText(r, t('tf-failed')));
      code.select();
    } finally {
      submit.disabled = false;
    }
  });
}

/* The recovery codes, shown once, with copy and download; onDone when the user has them. */
export function showCodes(host, codes, onDone) {
  const box = el('div', 'two-factor codes');
  const list = el('ul', 'recovery-codes');
  list.dataset.ib = 'tf-recovery-codes';
  codes.forEach((c) => list.append(el('li', null, c)));
  const text = codes.join('\n') + '\n';
  const note = el('p', 'muted');
  note.setAttribute('role', 'status');
  const copy = button('ghost', 'tf-copy', t('copy'));
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(text); note.textContent = t('copied'); } catch (e) { /* select by hand */ }
  });
  const download = el('a', 'ghost button', t('download'));
  download.dataset.ib = 'tf-download';
  download.download = 'sosyocrm-recovery-codes.txt';
  download.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const done = button('primary', 'tf-codes-done', t('tf-codes-done'));
  done.addEventListener('click', () => { URL.revokeObjectURL(download.href); onDone(); });
  const actions = el('div', 'actions');
  actions.append(copy, download);
  box.append(el('h2', null, t('tf-codes-title')), el('p', null, t('tf-codes-help')), list, actions, note, done);
  host.replaceChildren(box);
  done.focus();
}

/* Enrolment: the set-up's QR code and key, then a first code; onDone(answer) after the codes
 * were shown. With `ticket` (a sign-in that requires it) the answer carries the new session. */
export async function enrol(host, { ticket, required, onDone, onBack }) {
  const box = el('form', 'two-factor enrol');
  box.noValidate = true;
  const error = errorLine();
  host.replaceChildren(box);
  const r = await api('POST', '/api/me/two-factor/setup', ticket ? { ticket } : undefined);
  if (!r.ok) {
    if (onBack) return onBack(errorText(r, t('tf-failed')));
    box.append(error);
    return say(error, errorText(r, t('tf-failed')));
  }
  const qr = el('img', 'qr');
  qr.dataset.ib = 'tf-qr';
  qr.alt = t('tf-qr');
  qr.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(r.data.qr_svg);
  const secret = el('code', 'secret', r.data.secret);
  secret.dataset.ib = 'tf-secret';
  const [codeLabel, code] = field(t('tf-first-code'), 'tf-confirm-code', CODE);
  const submit = button('primary', 'tf-confirm', t('tf-confirm'), 'submit');
  const parts = [el('h2', null, t('tf-title'))];
  if (required) parts.push(el('p', null, t('tf-setup-required')));
  parts.push(el('p', 'muted', t('tf-scan')), qr, el('p', 'muted', t('tf-key')), secret, codeLabel, error, submit);
  if (onBack) {
    const back = button('ghost', 'tf-back', t('back'));
    back.addEventListener('click', () => onBack(''));
    parts.push(back);
  }
  box.append(...parts);
  code.focus();
  box.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = code.value.replace(/\s/g, '');
    if (!value) return code.focus();
    submit.disabled = true;
    try {
      const answer = await api('POST', '/api/me/two-factor/confirm', ticket ? { code: value, ticket } : { code: value }, { quiet401: true });
      if (!answer.ok) {
        say(error, errorText(answer, t('tf-failed')));
        return code.select();
      }
      showCodes(host, answer.data.recovery_codes, () => onDone(answer.data));
    } finally {
      submit.disabled = false;
    }
  });
}

/* The signed-in user's own settings, drawn into `host` (a dialog's body). */
export async function securityPanel(host) {
  const r = await api('GET', '/api/me/two-factor');
  const box = el('div', 'two-factor settings');
  box.dataset.ib = 'tf-settings';
  host.replaceChildren(box);
  if (!r.ok) return box.append(el('p', 'error', errorText(r, t('tf-failed'))));
  const status = el('p', null);
  status.dataset.ib = 'tf-status';
  box.append(el('h2', null, t('tf-title')), status);
  if (r.data.required) box.append(el('p', 'muted', t('tf-required')));
  if (!r.data.enabled) {
    status.textContent = t('tf-off');
    const start = button('primary', 'tf-enable', t('tf-enable'));
    start.addEventListener('click', () => enrol(host, { onDone: () => securityPanel(host) }));
    box.append(start);
    return;
  }
  status.textContent = t('tf-on', { when: stamp(r.data.enabled_at), n: r.data.recovery_codes_left });

  const off = el('form', 'stack');
  off.noValidate = true;
  const [pwLabel, pw] = field(t('password'), 'tf-disable-password', { type: 'password', autocomplete: 'current-password' });
  const [offCodeLabel, offCode] = field(t('tf-code'), 'tf-disable-code', CODE);
  const offError = errorLine();
  off.append(el('p', 'muted', t('tf-disable-help')), pwLabel, offCodeLabel, offError,
    button('ghost danger', 'tf-disable', t('tf-disable'), 'submit'));
  off.addEventListener('submit', async (e) => {
    e.preventDefault();
    const a = await api('DELETE', '/api/me/two-factor', { password: pw.value, code: offCode.value.replace(/\s/g, '') }, { quiet401: true });
    if (!a.ok) return say(offError, errorText(a, t('tf-failed')));
    securityPanel(host);
  });

  const fresh = el('form', 'stack');
  fresh.noValidate = true;
  const [newCodeLabel, newCode] = field(t('tf-code'), 'tf-regenerate-code', CODE);
  const freshError = errorLine();
  fresh.append(el('p', 'muted', t('tf-regenerate-help')), newCodeLabel, freshError,
    button('ghost', 'tf-regenerate', t('tf-regenerate'), 'submit'));
  fresh.addEventListener('submit', async (e) => {
    e.preventDefault();
    const a = await api('POST', '/api/me/two-factor/recovery-codes', { code: newCode.value.replace(/\s/g, '') }, { quiet401: true });
    if (!a.ok) return say(freshError, errorText(a, t('tf-failed')));
    showCodes(host, a.data.recovery_codes, () => securityPanel(host));
  });
  box.append(off, fresh);
}
