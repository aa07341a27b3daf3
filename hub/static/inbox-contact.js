/* The contact panel beside the open conversation: the person's identities on the channels,
 * their other conversations, and an admin's export. (Search is inbox-search.js.) */
import { api, clock, el } from './common.js';
import { $, KINDS, channels, conversations, flash, state, t } from './inbox-state.js';
import { openConversation } from './inbox-thread.js';

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
  $('contact-name').textContent = c.name || c.username || t('visitor');
  $('contact-username').textContent = [c.username && `@${c.username}`, c.email].filter(Boolean).join(' · ');
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
  const exportBtn = $('contact-export');
  exportBtn.hidden = state.me.role !== 'admin';
  exportBtn.onclick = () => exportContact(c.id);
  panel.hidden = false;
  $('contact-toggle').setAttribute('aria-expanded', 'true');
  if (openLatest && c.conversations.length && !c.conversations.some((x) => x.id === state.openId)) openConversation(c.conversations[0].id);
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
