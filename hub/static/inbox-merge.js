/* Merging two contacts that are one person (POST /api/contacts/{id}/merge), in the contact
 * panel: "Merge with another contact…" finds the other one (GET /api/contacts?q=), asks, and
 * merges it into the contact shown; while the merge is pending the panel says so, with Undo
 * and Confirm (POST /api/contacts/merges/{id}/undo, /confirm). Names go on the page with
 * textContent only. */
import { api, el } from './common.js';
import strings from './strings.js';
import mine from './merge-strings.js';
import { $, flash, t } from './inbox-state.js';

Object.keys(mine).forEach((lang) => { strings[lang] = Object.assign(strings[lang] || {}, mine[lang]); });

const who = (c) => c.name || c.username || c.email || `${t('visitor')} ${String(c.id).slice(0, 6)}`;
const why = (r) => (r.data && r.data.error && r.data.error.message) || r.status;

function button(name, text, cls = 'ghost') {
  const b = el('button', cls, text);
  b.type = 'button';
  b.dataset.ib = name;
  return b;
}

// The panel's part: below the contact's conversations.
const section = el('section', 'contact-merge');
section.dataset.ib = 'contact-merge';
$('contact-conversations').after(section);

let current = null, refresh = () => {};

/* Called by the contact panel each time it shows a contact; `reload` shows it again. */
export function showMerge(contact, reload) {
  current = contact;
  refresh = reload;
  const m = contact.merge;
  if (!m) {
    const open = button('merge-open', t('merge-open'));
    open.addEventListener('click', () => openDialog());
    section.replaceChildren(open);
    return;
  }
  const kept = m.contact_id === contact.id;
  const said = el('p', null, kept ? t('merge-with', { name: m.other_name || t('visitor') }) : t('merge-into'));
  said.dataset.ib = 'merge-state';
  const undo = button('merge-undo', t('merge-undo'));
  undo.addEventListener('click', () => act(`/api/contacts/merges/${encodeURIComponent(m.id)}/undo`));
  const confirmBtn = button('merge-confirm', t('merge-confirm'), 'primary');
  confirmBtn.addEventListener('click', () => {
    if (window.confirm(t('merge-confirm-ask', { name: m.other_name || t('visitor') }))) act(`/api/contacts/merges/${encodeURIComponent(m.id)}/confirm`);
  });
  section.replaceChildren(said, undo, confirmBtn);
}

async function act(url) {
  const r = await api('POST', url).catch(() => ({ ok: false, status: 0 }));
  if (!r.ok) flash(t('merge-failed', { why: why(r) }));
  refresh();
}

// The dialog: find the other contact, then confirm.
const dialog = el('dialog', 'password-dialog merge-dialog');
dialog.dataset.ib = 'merge-dialog';
dialog.setAttribute('aria-labelledby', 'merge-dialog-title');
const heading = el('h2', null, '');
heading.id = 'merge-dialog-title';
const help = el('p', 'muted', '');
const query = el('input');
query.type = 'search';
query.dataset.ib = 'merge-query';
query.autocomplete = 'off';
const found = el('ul', 'merge-found');
found.dataset.ib = 'merge-found';
const ask = el('div');
const close = button('merge-cancel', '');
close.addEventListener('click', () => dialog.close());
dialog.append(heading, help, query, found, ask, close);
document.body.append(dialog);

function openDialog() {
  heading.textContent = t('merge-title');
  help.textContent = t('merge-help');
  query.placeholder = t('merge-search');
  query.setAttribute('aria-label', t('merge-search'));
  close.textContent = t('merge-cancel');
  query.value = '';
  found.replaceChildren();
  ask.replaceChildren();
  dialog.showModal();
  query.focus();
  search();
}

let seq = 0;
async function search() {
  const mine = ++seq;
  const params = new URLSearchParams({ limit: '10' });
  if (query.value.trim()) params.set('q', query.value.trim());
  const r = await api('GET', `/api/contacts?${params}`).catch(() => ({ ok: false }));
  if (mine !== seq || !r.ok || !current) return;
  const others = r.data.items.filter((c) => c.id !== current.id);
  found.replaceChildren(...others.map((c) => {
    const b = button('merge-candidate', who(c));
    b.setAttribute('aria-label', t('merge-pick', { name: who(c) }));
    b.addEventListener('click', () => confirmStep(c));
    const li = el('li');
    li.append(b);
    return li;
  }));
  if (!others.length) found.append(el('li', 'muted', t('merge-none')));
}
let typing = 0;
query.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(search, 200); });

function confirmStep(other) {
  const kept = current;
  const go = button('merge-do', t('merge-do'), 'primary');
  go.addEventListener('click', async () => {
    const r = await api('POST', `/api/contacts/${encodeURIComponent(kept.id)}/merge`, { other_id: other.id }).catch(() => ({ ok: false, status: 0 }));
    if (!r.ok) { ask.replaceChildren(el('p', 'error', t('merge-failed', { why: why(r) }))); return; }
    dialog.close();
    refresh();
  });
  const said = el('p', null, t('merge-ask', { other: who(other), kept: who(kept) }));
  said.dataset.ib = 'merge-ask';
  ask.replaceChildren(said, go);
  go.focus();
}
