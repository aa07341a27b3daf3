/* The inbox's realtime side: the shared protocol client (hubsocket.js) on /ws/agent, and what
 * each event changes on the page. The first connect follows the list's load and resumes from
 * the position the list answered, so what the list could not show yet (a conversation the
 * database had yet to store) is replayed. After every welcome that is not a resume (no
 * position known, or after 4409 "cursor too old") the list and the open thread are reloaded
 * over REST. */
import { api, ms } from './common.js';
import { hubSocket } from './hubsocket.js';
import { applyChanges, fill } from './render.js';
import {
  conversations, eventAfter, members, pending, presence, reads, recent, rows, setStatus, state, t, typingEl,
} from './inbox-state.js';
import { applyConversationChanges } from './inbox-actions.js';
import { forgetTyping } from './inbox-composer.js';
import { attributesEvent } from './inbox-attributes.js';
import { loadConversations, loadMembers, loadQueue, loadTeams, renderList } from './inbox-list.js';
import { hear } from './inbox-notify.js';
import {
  addMessage, closeThread, markRead, openConversation, renderAssignee, renderHeader, renderSeen,
} from './inbox-thread.js';

let countdown = 0, otherTypingTimer = 0;
const socket = hubSocket({
  url: () => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/agent`,
  async token() { // short-lived: a fresh one for every connect
    const r = await api('POST', '/api/agent/socket-token').catch(() => ({ ok: false, status: 0 }));
    if (!state.active) return null;
    if (!r.ok) throw new Error(`socket token: ${r.status}`);
    return r.data.token;
  },
  onConnecting() {
    clearInterval(countdown);
    setStatus('connecting', t('connecting'));
  },
  onRetry(delay) {
    const at = Date.now() + delay;
    const show = () => setStatus('offline', delay > 1500 ? t('reconnecting-in', { s: Math.ceil((at - Date.now()) / 1000) }) : t('reconnecting'));
    show();
    clearInterval(countdown);
    countdown = setInterval(show, 1000);
    if (!state.loaded) loadConversations().catch(() => {});
  },
  onClose() { state.typingOn = null; },
  onWelcome,
  onEvent: (f) => onEvent(f.id, f.name, f.data || {}),
  onFrame,
});

export async function connect() {
  if (!state.active) return;
  const position = await loadConversations().catch(() => null);
  if (!state.active) return;
  if (position) socket.cursor = position;
  socket.connect();
}
export function disconnect() {
  socket.close();
  socket.cursor = null;
  clearInterval(countdown);
  pending.forEach((p, clientId) => socket.settle(clientId));
}
export function isLive() { return socket.live; }
export function sendFrame(frame) { return socket.send(frame); }
export function queueFrame(clientId, frame) { socket.queue(clientId, frame); }
export function settleFrame(clientId) { socket.settle(clientId); }
window.addEventListener('online', () => { if (state.active) socket.retryNow(); });

function onWelcome(f) {
  setStatus('live', t('live'));
  if (state.myPresence !== 'online') socket.send({ type: 'presence', state: state.myPresence });
  if (!f.resumed) {
    loadConversations().catch(() => {});
    loadMembers().catch(() => {});
    if (state.openId) openConversation(state.openId, true);
  }
  markRead(); // pending sends follow: the socket resends them after every welcome
}

function onFrame(f) {
  if (f.type === 'error' && !f.client_id) {
    // typing/read on a conversation the database does not have yet (the persist worker lags
    // the stream): forget that typing was announced so the next key press tries again.
    if (f.code === 'not_found') state.typingOn = null;
  } else if (f.type === 'error') {
    const p = pending.get(f.client_id);
    if (!p) return;
    if (f.code === 'not_found' && p.tries++ < 3) { // a brand-new conversation may not be stored yet
      setTimeout(() => { if (pending.has(f.client_id)) socket.send(p.frame); }, 1000);
      return;
    }
    pending.delete(f.client_id);
    socket.settle(f.client_id);
    p.node.classList.remove('sending');
    p.node.classList.add('failed');
    fill(p.node, Object.assign(p.m, { status: 'failed', error: { message: f.message } }), t);
  }
}

function onEvent(id, eventName, data) {
  hear(eventName, data); // sounds and notifications, before the page applies it
  if (eventName === 'message.created' && data.message) {
    const m = Object.assign({}, data.message, { event_id: id });
    let c = conversations.get(m.conversation_id);
    if (!c) {
      c = { id: m.conversation_id, channel_id: m.channel_id, contact_id: m.contact_id, channel_kind: m.channel_kind, kind: m.kind,
        status: 'open', unread: 0, labels: [], assignee_id: null, last_activity_at: m.sent_at, last_message_preview: '', contact: { id: m.contact_id } };
      conversations.set(c.id, c);
    }
    // Replayed after a list that was read once it was stored: the list counted it already.
    const counted = c.last_event_id && !eventAfter(id, c.last_event_id);
    if (data.contact && data.contact.name && m.kind !== 'group') c.contact = Object.assign({}, c.contact, { name: data.contact.name });
    // A group's title follows its newest message (a rename is one).
    if (m.group && m.group.title && ms(m.sent_at) >= ms(c.last_activity_at)) c.title = m.group.title;
    // A rule's note of what it did is a line of activity: not the preview, not activity.
    const activity = m.note && m.sender && m.sender.type === 'system';
    if (!activity && (ms(m.sent_at) >= ms(c.last_activity_at) || !c.last_message_preview)) {
      c.last_activity_at = m.sent_at;
      c.last_message_preview = (m.text || (m.attachments && m.attachments.length ? `[${t(m.attachments[0].type)}]` : '')).slice(0, 200);
      c.last_event_id = id;
    }
    if (m.direction === 'in' && !m.note) {
      c.last_inbound_at = m.sent_at;
      if (c.status === 'resolved' || c.status === 'snoozed') c.status = 'open'; // the hub reopens it too
    }
    const buffer = recent.get(c.id) || [];
    buffer.push(m);
    recent.delete(c.id); // re-inserted last: the map is kept in order of activity
    recent.set(c.id, buffer.slice(-50));
    if (recent.size > 200) recent.delete(recent.keys().next().value);
    if (c.id === state.openId) {
      addMessage(m);
      if (m.sender && m.sender.type === 'contact') typingEl.hidden = true;
      renderHeader();
      markRead();
    } else if (m.direction === 'in' && !m.note && !counted) {
      c.unread = (c.unread || 0) + 1;
    }
    renderList();
  } else if (eventName === 'message.updated' && data.message_id) {
    const buffered = (recent.get(data.conversation_id) || []).find((m) => m.id === data.message_id);
    if (buffered) applyChanges(buffered, data.changes || {});
    const m = state.thread.get(data.message_id);
    if (m) { applyChanges(m, data.changes || {}); fill(m.node, m, t); }
  } else if (eventName === 'typing') {
    if (data.conversation_id !== state.openId || !data.by || (data.by.type === 'agent' && data.by.id === state.me.user_id)) return;
    clearTimeout(otherTypingTimer);
    typingEl.textContent = data.by.type === 'contact' ? t('contact-typing') : t('typing', { name: data.by.name || t('agent') });
    typingEl.hidden = !data.on;
    if (data.on) otherTypingTimer = setTimeout(() => { typingEl.hidden = true; }, 10000);
  } else if (eventName === 'conversation.updated' && data.conversation_id) {
    applyConversationChanges(data.conversation_id, data.changes, id, data.routed, data.as_of);
    if (data.changes) loadQueue();
    if (data.read && data.read.user_id) {
      const positions = reads.get(data.conversation_id) || new Map();
      const before = positions.get(data.read.user_id);
      if (!before || eventAfter(data.read.up_to, before)) positions.set(data.read.user_id, data.read.up_to);
      reads.set(data.conversation_id, positions);
      const c = conversations.get(data.conversation_id);
      if (data.read.user_id === state.me.user_id && c && c.last_event_id && !eventAfter(c.last_event_id, data.read.up_to)) { c.unread = 0; renderList(); }
      if (data.conversation_id === state.openId) renderSeen();
    }
    if (data.contact_read_up_to && data.conversation_id === state.openId) {
      state.contactRead = data.contact_read_up_to;
      state.thread.forEach((m) => {
        if (m.direction === 'out' && !m.note && m.event_id && !eventAfter(m.event_id, state.contactRead) && m.status !== 'read') {
          applyChanges(m, { status: 'read' });
          fill(m.node, m, t);
        }
      });
    }
  } else if (eventName === 'contact.updated' && data.contact_id) {
    conversations.forEach((c) => {
      // An agent's edit (`by`) carries every field, so a cleared name is null; others carry what they know.
      const was = c.contact || {};
      const name = data.by && 'name' in data ? data.name : data.name || was.name;
      if (c.contact_id === data.contact_id) c.contact = Object.assign({}, c.contact, { name, username: data.username || was.username });
    });
    renderList();
    if (state.openId) renderHeader();
    document.dispatchEvent(new CustomEvent('contact-updated', { detail: data })); // the panel (inbox-contact.js)
  } else if (eventName === 'contact.deleted' && data.contact_id) {
    // The person was erased: their conversations leave the list, and the thread if open.
    const gone = new Set(data.conversation_ids || []);
    // Erased from one channel only (its data deleted at disconnect): just those listed go.
    if (!data.channel_id) conversations.forEach((c) => { if (c.contact_id === data.contact_id) gone.add(c.id); });
    gone.forEach((cid) => {
      conversations.delete(cid); recent.delete(cid); reads.delete(cid);
      const li = rows.get(cid);
      if (li) { li.remove(); rows.delete(cid); }
    });
    if (state.typingOn && gone.has(state.typingOn)) forgetTyping();
    if (state.openId && gone.has(state.openId)) closeThread();
    renderList();
  } else if (eventName === 'presence' && data.user_id) {
    presence.set(data.user_id, data.state);
    if (!members.has(data.user_id)) members.set(data.user_id, { name: data.name });
    renderAssignee();
  } else if (eventName === 'routing.updated') {
    loadTeams();
  }
  if (eventName === 'message.created') loadQueue();
  attributesEvent(eventName, data);
}
