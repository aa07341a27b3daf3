/* The open conversation: its header, its messages (older pages on scrolling up, live ones merged
 * in by id), who has seen it, and read marks. */
import { api, el, ms, stamp } from './common.js';
import { applyChanges, fill, messageEl } from './render.js';
import {
  $, KINDS, appView, channels, conversations, eventAfter, members, messagesEl, name, pane, pending, placeholder,
  presence, reads, readSent, recent, reply, state, t, teams, title, typingEl,
} from './inbox-state.js';
import { change } from './inbox-actions.js';
import { forgetCanned, forgetUploads, renderWindow, setMode, typing } from './inbox-composer.js';
import { showContact } from './inbox-contact.js';
import { showConversationAttributes } from './inbox-attributes.js';
import { renderList } from './inbox-list.js';
import { isLive, sendFrame, settleFrame } from './inbox-live.js';

const olderBtn = $('load-older');
let loadingOlder = false;
// A conversation known from a live event may not be stored yet (the worker stores it a moment
// later): its thread is read again a few times, each a little later, until it is.
const notStoredYet = new Map();
const STORE_RETRIES = 6;

export async function openConversation(id, keep) {
  const c = conversations.get(id);
  if (!c) return;
  if (state.openId !== id) { typing(false); forgetCanned(); forgetUploads(); }
  const switching = state.openId !== id || !keep;
  state.openId = id;
  c.unread = 0;
  appView.dataset.view = 'thread';
  renderList();
  placeholder.hidden = true;
  pane.hidden = false;
  renderHeader();
  if (switching) {
    messagesEl.querySelectorAll('.msg').forEach((m) => m.remove());
    state.thread = new Map();
    typingEl.hidden = true;
    olderBtn.hidden = true;
    $('history-start').hidden = true;
    state.contactRead = null;
    $('post').hidden = true;
    setMode(c.kind === 'comment' ? 'reply' : $('mode-note').checked ? 'note' : 'reply');
    pending.forEach((p) => { if (p.conversationId === id) place(p.node); });
    if (!$('contact-panel').hidden) showContact(c.contact_id);
    showConversationAttributes(id);
  }
  const seq = ++state.loadSeq;
  const [detail, page] = await Promise.all([
    api('GET', `/api/conversations/${encodeURIComponent(id)}`),
    api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50`),
  ]);
  if (seq !== state.loadSeq || state.openId !== id) return;
  if (detail.ok) {
    const current = conversations.get(id);
    Object.assign(current, detail.data, ms(current.last_activity_at) > ms(detail.data.last_activity_at)
      ? { last_activity_at: current.last_activity_at, last_message_preview: current.last_message_preview, last_event_id: current.last_event_id } : {});
    current.unread = 0;
    const positions = reads.get(id) || new Map();
    (detail.data.reads || []).forEach((r) => {
      if (!positions.has(r.user_id) || eventAfter(r.up_to, positions.get(r.user_id))) positions.set(r.user_id, r.up_to);
    });
    reads.set(id, positions);
    renderHeader();
  }
  if (!page.ok && page.status === 404 && (notStoredYet.get(id) || 0) < STORE_RETRIES) {
    const tries = (notStoredYet.get(id) || 0) + 1;
    notStoredYet.set(id, tries);
    setTimeout(() => { if (state.openId === id) openConversation(id, true); }, 250 * tries);
  } else {
    notStoredYet.delete(id);
  }
  if (page.ok) {
    page.data.items.forEach(addMessage);
    state.nextBefore = page.data.next_before;
    olderBtn.hidden = !state.nextBefore;
    $('history-start').hidden = !!state.nextBefore;
  }
  (recent.get(id) || []).forEach(addMessage);
  showPost();
  renderSeen();
  messagesEl.scrollTop = messagesEl.scrollHeight;
  markRead();
  if (switching && matchMedia('(min-width: 761px)').matches) reply.focus();
}

export function renderHeader() {
  const c = conversations.get(state.openId);
  if (!c) return;
  $('title').textContent = title(c);
  const channel = channels.get(c.channel_id);
  const parts = [channel ? `${channel.name} · ${KINDS[channel.kind] || channel.kind}` : KINDS[c.channel_kind] || ''];
  parts.push(c.status === 'snoozed' && c.snoozed_until ? t('snoozed-until', { t: stamp(c.snoozed_until) }) : t(c.status));
  $('subtitle').textContent = parts.filter(Boolean).join(' · ');
  const had = document.activeElement; // a button that hides itself hands the focus to its pair
  $('resolve').hidden = c.status === 'resolved';
  $('reopen').hidden = c.status !== 'resolved' && c.status !== 'snoozed';
  $('pending-action').hidden = c.status === 'pending';
  if (had && had.hidden && (had === $('resolve') || had === $('reopen'))) (had === $('resolve') ? $('reopen') : $('resolve')).focus();
  $('assignee').value = c.assignee_id || '';
  $('team').value = (c.team_id && teams.has(c.team_id) && c.team_id) || '';
  $('priority').value = c.priority || '';
  $('visibility').hidden = c.kind !== 'comment';
  const chips = $('label-chips');
  chips.replaceChildren(...(c.labels || []).map((l) => {
    const chip = el('button', 'chip', `${l} ×`);
    chip.type = 'button';
    chip.dataset.ib = 'label';
    chip.dataset.label = l;
    chip.setAttribute('aria-label', t('remove-label', { label: l }));
    chip.addEventListener('click', () => change({ labels: (c.labels || []).filter((x) => x !== l) }));
    return chip;
  }));
  renderWindow();
}

export function renderAssignee() {
  const pick = $('assignee');
  const options = [el('option', null, t('nobody'))];
  options[0].value = '';
  [...members.entries()].sort((a, b) => (a[1].name || '').localeCompare(b[1].name || '')).forEach(([id, m]) => {
    const s = presence.get(id) || 'offline';
    const o = el('option', null, `${m.name || id}${id === state.me.user_id ? ` (${t('you')})` : ''} · ${t(s)}`);
    o.value = id;
    o.dataset.presence = s;
    options.push(o);
  });
  pick.replaceChildren(...options);
  const c = conversations.get(state.openId);
  pick.value = (c && c.assignee_id) || '';
  renderList();
}

export function renderTeam() {
  const pick = $('team');
  $('team-pick').hidden = teams.size === 0;
  const none = el('option', null, t('no-team'));
  none.value = '';
  pick.replaceChildren(none, ...[...teams.values()].map((team) => { const o = el('option', null, team.name); o.value = team.id; return o; }));
  const c = conversations.get(state.openId);
  pick.value = (c && c.team_id && teams.has(c.team_id) && c.team_id) || '';
}

function showPost() {
  const c = conversations.get(state.openId);
  if (!c || c.kind !== 'comment') return;
  const first = [...state.thread.values()].find((m) => m.raw && m.raw.media);
  const media = first && first.raw.media;
  $('post').textContent = media && media.id ? t('comment-on', { id: `${media.media_product_type || ''} ${media.id}`.trim() }) : t('comment-on-post');
  $('post').hidden = false;
}

async function loadOlder() {
  if (!state.nextBefore || !state.openId || loadingOlder) return;
  const id = state.openId;
  loadingOlder = true;
  olderBtn.disabled = true;
  olderBtn.textContent = t('loading-older');
  const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50&before=${encodeURIComponent(state.nextBefore)}`).catch(() => ({ ok: false }));
  loadingOlder = false;
  olderBtn.disabled = false;
  olderBtn.textContent = t('load-older');
  if (!r.ok || state.openId !== id) return;
  const before = messagesEl.scrollHeight;
  r.data.items.forEach(addMessage);
  messagesEl.scrollTop += messagesEl.scrollHeight - before; // keep the reader where they were
  state.nextBefore = r.data.next_before;
  olderBtn.hidden = !state.nextBefore;
  $('history-start').hidden = !!state.nextBefore;
  showPost();
  renderSeen();
}
olderBtn.addEventListener('click', loadOlder);
new IntersectionObserver((entries) => { // scrolling up to the top loads the page before
  if (entries.some((e) => e.isIntersecting) && messagesEl.scrollHeight > messagesEl.clientHeight) loadOlder();
}, { root: messagesEl, rootMargin: '200px 0px 0px 0px' }).observe($('sentinel'));

const later = (a, b) => { // by time, then by stream position (several messages share a millisecond)
  const at = Number(a.dataset.at || 0), bt = Number(b.dataset.at || 0);
  return at > bt || (at === bt && !!a.dataset.event && !!b.dataset.event && eventAfter(a.dataset.event, b.dataset.event));
};
export function place(node) { // insert in order, after the top markers
  let after = messagesEl.lastElementChild;
  while (after && after.classList.contains('msg') && later(after, node)) after = after.previousElementSibling;
  messagesEl.insertBefore(node, after ? after.nextSibling : $('history-start').nextSibling);
}

export function addMessage(m) {
  if (m.conversation_id !== state.openId) return;
  const known = state.thread.get(m.id);
  if (known) { // REST and live agree on ids; keep the furthest status
    if (m.status && m.status !== known.status) { applyChanges(known, { status: m.status, error: m.error }); fill(known.node, known, t); }
    const waiting = (list) => (list || []).some((a) => a.state === 'pending');
    if (waiting(known.attachments) && !waiting(m.attachments) && (m.attachments || []).length) { // fetched meanwhile
      applyChanges(known, { attachments: m.attachments });
      fill(known.node, known, t);
    }
    return;
  }
  const stick = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
  const p = m.client_id && pending.get(m.client_id);
  const copy = Object.assign({}, m);
  let node;
  if (p) {
    pending.delete(m.client_id);
    settleFrame(m.client_id);
    node = p.node;
    node.classList.remove('sending', 'failed');
    node.remove();
    fill(node, copy, t);
  } else {
    node = messageEl(copy, t);
  }
  copy.node = node;
  state.thread.set(m.id, copy);
  if (state.contactRead && copy.direction === 'out' && copy.event_id && !eventAfter(copy.event_id, state.contactRead)) applyChanges(copy, { status: 'read' });
  place(node);
  if (stick || p) messagesEl.scrollTop = messagesEl.scrollHeight;
}

export function renderSeen() {
  const positions = reads.get(state.openId);
  const names = [];
  if (positions) positions.forEach((upTo, user) => { if (user !== state.me.user_id) names.push(name(user)); });
  $('seen').textContent = names.length ? t('seen-by', { names: names.join(', ') }) : '';
  $('seen').hidden = !names.length;
}

export function markRead() {
  const c = conversations.get(state.openId);
  if (!c || !c.last_event_id || !isLive() || document.hidden || readSent.get(c.id) === c.last_event_id) return;
  readSent.set(c.id, c.last_event_id);
  sendFrame({ type: 'read', conversation_id: c.id, up_to: c.last_event_id });
}
document.addEventListener('visibilitychange', markRead);

// The open conversation is gone (its contact was erased): back to the placeholder.
export function closeThread() {
  state.openId = null; state.thread = new Map(); state.loadSeq++;
  messagesEl.querySelectorAll('.msg').forEach((m) => m.remove());
  pane.hidden = true; placeholder.hidden = false; $('contact-panel').hidden = true;
  appView.dataset.view = 'list';
}
