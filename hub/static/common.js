/* Shared by the inbox and the admin console: REST with the session cookie and CSRF header,
 * DOM helpers that only ever set text (never HTML), times, and the interface language.
 * Plain ES module, no build step. */

export const ib = (name, root = document) => root.querySelector(`[data-ib="${name}"]`);
export const ibAll = (name, root = document) => [...root.querySelectorAll(`[data-ib="${name}"]`)];

export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

export const ms = (iso) => { const t = Date.parse(iso); return isNaN(t) ? 0 : t; };

export const uid = () => (crypto.randomUUID ? crypto.randomUUID()
  : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(''));

export function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toDateString() === new Date().toDateString()
    ? d.toLocaleTimeString(lang(), { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString(lang(), { month: 'short', day: 'numeric' });
}

export function stamp(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString(lang(), { dateStyle: 'medium', timeStyle: 'short' });
}

// Session: the CSRF token comes with /api/me and /api/auth/login.
let csrf = null;
let onGone = null;
export const session = {
  set(token) { csrf = token; },
  clear() { csrf = null; },
  onExpired(fn) { onGone = fn; },
};

// `quiet401`: a 401 that means a wrong password typed, not a session that ended.
export async function api(method, path, body, { quiet401 = false } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch (e) { /* no body */ }
  if (r.status === 401 && csrf && onGone && !quiet401) onGone();
  return { ok: r.ok, status: r.status, data };
}

/* A multipart POST (files): the browser sets the content type with its boundary. */
export async function upload(path, form) {
  const headers = { accept: 'application/json' };
  if (csrf) headers['x-csrf-token'] = csrf;
  const r = await fetch(path, { method: 'POST', headers, credentials: 'same-origin', body: form });
  let data = null;
  try { data = await r.json(); } catch (e) { /* no body */ }
  if (r.status === 401 && csrf && onGone) onGone();
  return { ok: r.ok, status: r.status, data };
}

export const errorText = (r, fallback) => (r.data && r.data.error && r.data.error.message) || fallback;

// Interface language: English and Turkish; the browser's language unless the user picked one.
const LANGS = ['en', 'tr'];
export function lang() {
  const saved = localStorage.getItem('hub.lang');
  if (LANGS.includes(saved)) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('tr') ? 'tr' : 'en';
}

export function setLang(value) {
  localStorage.setItem('hub.lang', LANGS.includes(value) ? value : 'en');
}

/* translator({en: {...}, tr: {...}}) -> t(key, vars): '{name}' placeholders are filled with
 * vars; a key missing in Turkish falls back to English, a key missing everywhere shows as is. */
export function translator(strings) {
  return (key, vars) => {
    const text = (strings[lang()] || {})[key] ?? strings.en[key] ?? key;
    return vars ? text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : text;
  };
}

/* Fills every [data-t] element's text (and [data-t-placeholder], [data-t-label]) from t. */
export function translatePage(t, root = document) {
  document.documentElement.lang = lang();
  root.querySelectorAll('[data-t]').forEach((n) => { n.textContent = t(n.dataset.t); });
  root.querySelectorAll('[data-t-placeholder]').forEach((n) => { n.placeholder = t(n.dataset.tPlaceholder); });
  root.querySelectorAll('[data-t-label]').forEach((n) => { n.setAttribute('aria-label', t(n.dataset.tLabel)); });
  root.querySelectorAll('[data-t-title]').forEach((n) => { n.title = t(n.dataset.tTitle); });
}

/* A <select> for the interface language; changing it reloads the page in that language. */
export function languagePicker(select) {
  select.value = lang();
  select.addEventListener('change', () => { setLang(select.value); location.reload(); });
}
