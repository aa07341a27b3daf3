/* The contact panel beside the open conversation: the
 * person's fields (any agent edits them; other agents' panels follow `contact.updated`), a
 * web-chat visitor's page, browser, language and live local time, their identities on the
 * channels, their other conversations, and an admin's export. (Search is inbox-search.js.) */
import { api, clock, el, lang, stamp } from './common.js';
import { $, KINDS, channels, conversations, flash, state, t, title } from './inbox-state.js';
import { openConversation } from './inbox-thread.js';
import { showContactAttributes } from './inbox-attributes.js';
import { showMerge } from './inbox-merge.js';

export async function openById(id) {
  if (!conversations.has(id)) {
    const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}`);
    if (!r.ok) return;
    conversations.set(id, r.data);
  }
  openConversation(id);
}

// Contact panel
export async function showContact(contactId, openLatest) {
  const panel = $('contact-panel');
  const r = await api('GET', `/api/contacts/${encodeURIComponent(contactId)}`).catch(() => ({ ok: false }));
  if (!r.ok) return;
  const c = r.data;
  const again = shown && shown.id === c.id;
  shown = c;
  $('contact-name').textContent = title({ contact: c, contact_id: c.id }); // as the list names them
  $('contact-username').textContent = [c.username && `@${c.username}`, c.email].filter(Boolean).join(' · ');
  fillForm(c, again);
  showVisitor(c.visitor);
  $('identities').replaceChildren(...c.identities.map((i) => {
    const channel = channels.get(i.channel_id);
    const li = el('li', null, `${channel ? `${channel.name} (${KINDS[channel.kind] || channel.kind})` : i.channel_id}: ${i.platform_user_id}`);
    li.dataset.ib = 'identity';
    return li;
  }));
  $('contact-conversations').replaceChildren(...c.conversations.map((conv) => {
    if (!conversations.has(conv.id)) conversations.set(conv.id, conv);
    const b = el('button', 'ghost', `${KINDS[conv.channel_kind] || ''} · ${t(conv.status)} · ${clock(conv.last_activity_at)} — ${conv.last_message_preview || ''}`);
    b.type = 'button';
    b.dataset.ib = 'contact-conversation';
    b.addEventListener('click', () => openConversation(conv.id));
    const li = el('li');
    li.append(b);
    return li;
  }));
  showContactAttributes(c.id);
  showMerge(c, () => showContact(c.id, false));
  const exportBtn = $('contact-export');
  exportBtn.hidden = state.me.role !== 'admin';
  exportBtn.onclick = () => exportContact(c.id);
  panel.hidden = false;
  $('contact-toggle').setAttribute('aria-expanded', 'true');
  if (openLatest && c.conversations.length && !c.conversations.some((x) => x.id === state.openId)) openConversation(c.conversations[0].id);
}
// The editable fields. A refill (another agent's change) keeps what this agent is typing.
let shown = null;
const FIELDS = ['name', 'email', 'phone', 'company', 'notes'];
const form = $('contact-form'), status = $('cf-status');
function fillForm(c, again) {
  const typing = again && FIELDS.some((f) => $(`cf-${f}`).value !== (form.dataset[f] || ''));
  FIELDS.forEach((f) => {
    form.dataset[f] = c[f] || '';
    if (!typing) { $(`cf-${f}`).value = c[f] || ''; $(`cf-${f}`).removeAttribute('aria-invalid'); }
  });
  if (!again) status.textContent = '';
}
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!shown) return;
  const patch = {};
  FIELDS.forEach((f) => { const v = $(`cf-${f}`).value.trim(); if (v !== (form.dataset[f] || '')) patch[f] = v || null; });
  FIELDS.forEach((f) => $(`cf-${f}`).removeAttribute('aria-invalid'));
  if (!Object.keys(patch).length) { status.textContent = t('cf-saved'); return; }
  const r = await api('PATCH', `/api/contacts/${encodeURIComponent(shown.id)}`, patch).catch(() => ({ ok: false, status: 0 }));
  if (!r.ok) {
    const code = r.data && r.data.error && r.data.error.code;
    const field = { invalid_email: 'email', invalid_phone: 'phone' }[code];
    if (field) { $(`cf-${field}`).setAttribute('aria-invalid', 'true'); $(`cf-${field}`).focus(); }
    status.textContent = field ? t(`cf-${code}`) : t('cf-failed', { why: (r.data && r.data.error && r.data.error.message) || r.status });
    return;
  }
  FIELDS.forEach((f) => { form.dataset[f] = ''; $(`cf-${f}`).value = ''; }); // filled again as stored
  fillForm(r.data, false);
  shown = r.data;
  $('contact-name').textContent = title({ contact: r.data, contact_id: r.data.id });
  status.textContent = t('cf-saved');
});
document.addEventListener('contact-updated', (e) => {
  // Only attribute values changed: inbox-attributes.js applies them (and keeps its "Saved.").
  const fields = Object.keys(e.detail).filter((k) => !['contact_id', 'by', 'attributes'].includes(k));
  if (!fields.length) return;
  if (shown && e.detail.contact_id === shown.id && !$('contact-panel').hidden) showContact(shown.id, false);
});

// A web-chat visitor's page and browser, and their local time, kept current while shown.
let ticker = 0;
function showVisitor(v) {
  clearInterval(ticker);
  const section = $('contact-visitor');
  section.hidden = !v;
  if (!v) return;
  const rows = [];
  const row = (key, value, name) => {
    if (!value) return;
    const dd = el('dd', null, value);
    if (name) dd.dataset.ib = name;
    rows.push(el('dt', null, t(key)), dd);
    return dd;
  };
  row('vi-page', v.page_title ? `${v.page_title} — ${v.page_url || ''}` : v.page_url, 'vi-page');
  row('vi-referrer', v.referrer, 'vi-referrer');
  row('vi-browser', v.browser, 'vi-browser');
  row('vi-language', v.language, 'vi-language');
  const local = row('vi-local-time', localTime(v.time_zone), 'vi-local-time');
  $('visitor-info').replaceChildren(...rows);
  if (local) ticker = setInterval(() => { local.textContent = localTime(v.time_zone); }, 15000);
}
function localTime(zone) {
  if (!zone) return '';
  try {
    const time = new Date().toLocaleTimeString(lang(), { timeZone: zone, hour: '2-digit', minute: '2-digit' });
    return t('vi-local-time-value', { time, zone });
  } catch { return ''; } // a zone this browser does not know
}

async function exportContact(contactId) { // a subject-access export, saved as a file
  const r = await fetch(`/api/contacts/${encodeURIComponent(contactId)}/export`, { credentials: 'same-origin' });
  if (!r.ok) return flash(t('action-failed', { why: r.status }));
  const link = el('a');
  link.href = URL.createObjectURL(await r.blob());
  link.download = `contact-${contactId}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
$('contact-toggle').addEventListener('click', () => {
  const c = conversations.get(state.openId);
  if (!$('contact-panel').hidden) { $('contact-panel').hidden = true; $('contact-toggle').setAttribute('aria-expanded', 'false'); } else if (c) showContact(c.contact_id);
});
$('contact-close').addEventListener('click', () => { $('contact-panel').hidden = true; $('contact-toggle').setAttribute('aria-expanded', 'false'); });
