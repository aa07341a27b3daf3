/* The composer under the open conversation: reply or private note, the platform's messaging
 * window, saved replies, typing announcements, and the agent's own presence. */
import { ms, uid } from './common.js';
import { cannedComposer, cannedDialog } from './canned.js';
import { messageEl } from './render.js';
import { $, HOUR, conversations, messagesEl, pane, pending, reply, state, t } from './inbox-state.js';
import { isLive, queueFrame, sendFrame } from './inbox-live.js';
import { place } from './inbox-thread.js';
import { forgetUploads, hasFiles, noFilesInNotes, sendFiles } from './inbox-upload.js';
import { offerTemplates } from './inbox-templates.js';
import { takeMentions } from './inbox-mentions.js';

export { forgetUploads };

const windowEl = $('window'), sendBtn = $('send');
let typingTimer = 0;

export function setMode(mode) {
  $(mode === 'note' ? 'mode-note' : 'mode-reply').checked = true;
  pane.dataset.mode = mode;
  reply.placeholder = t(mode === 'note' ? 'note-placeholder' : 'reply-placeholder');
  sendBtn.textContent = t(mode === 'note' ? 'add-note' : 'send');
  renderWindow();
}
$('mode-reply').addEventListener('change', () => setMode('reply'));
$('mode-note').addEventListener('change', () => setMode('note'));
$('public-reply').addEventListener('change', renderWindow);
$('private-reply').addEventListener('change', renderWindow);

const duration = (span) => {
  const h = Math.floor(span / HOUR), m = Math.max(1, Math.floor((span % HOUR) / 60e3));
  return h >= 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : h ? `${h} h ${m} min` : `${m} min`;
};

/* The messaging window, as adapters/window.py decides it on the server. */
function messagingWindow(c, privateReply) {
  const now = Date.now();
  const last = ms(c.last_inbound_at) || now;
  if (c.kind === 'comment' && privateReply) { // 7 days from the comment (the server says when, once it has it)
    const closes = ms(c.window && c.window.private_reply_closes_at) || last + 168 * HOUR;
    return { open: now < closes, closes };
  }
  if (c.kind === 'comment' || !['whatsapp', 'messenger', 'instagram'].includes(c.channel_kind)) return { open: true, closes: null };
  if (now < last + 24 * HOUR) return { open: true, closes: last + 24 * HOUR };
  if (c.channel_kind !== 'whatsapp' && now < last + 168 * HOUR) return { open: true, closes: last + 168 * HOUR, human: true };
  return { open: false, closes: last + (c.channel_kind === 'whatsapp' ? 24 : 168) * HOUR };
}

export function renderWindow() {
  const c = conversations.get(state.openId);
  if (!c) return;
  const note = pane.dataset.mode === 'note';
  const w = messagingWindow(c, $('private-reply').checked);
  const now = Date.now();
  windowEl.dataset.open = String(w.open);
  windowEl.textContent = !w.closes ? t('window-none')
    : w.open ? t(w.human ? 'window-human' : 'window-left', { t: duration(w.closes - now) })
      : t(c.channel_kind === 'whatsapp' ? 'window-closed-whatsapp' : 'window-closed', { t: duration(now - w.closes) });
  windowEl.hidden = note || !w.closes;
  const blocked = !note && !w.open;
  // Past WhatsApp's window only a template reaches the customer (hub/static/inbox-templates.js).
  offerTemplates(c, blocked && c.channel_kind === 'whatsapp' && c.kind !== 'comment');
  reply.disabled = blocked;
  sendBtn.disabled = blocked;
}
setInterval(renderWindow, 30e3);

function sendReply() {
  const text = reply.value.trim();
  const c = conversations.get(state.openId);
  if ((!text && !hasFiles()) || !c || sendBtn.disabled) return;
  const note = pane.dataset.mode === 'note';
  if (note && hasFiles()) return noFilesInNotes(); // a note holds text only
  reply.value = '';
  const privateReply = !note && c.kind === 'comment' && $('private-reply').checked;
  if (hasFiles()) { typing(false); sendFiles(c, text, privateReply); return; }
  const clientId = uid();
  const m = { id: '', conversation_id: c.id, direction: 'out', text, note, private_reply: privateReply, sent_at: new Date().toISOString(),
    status: note ? null : 'pending', sender: { type: 'agent', id: state.me.user_id, name: state.me.name }, kind: privateReply ? 'dm' : c.kind };
  const node = messageEl(m, t);
  node.classList.add('sending');
  node.dataset.clientId = clientId;
  place(node);
  messagesEl.scrollTop = messagesEl.scrollHeight;
  const mentions = note ? takeMentions(text) : [];
  const frame = JSON.stringify({ type: 'message.send', client_id: clientId, conversation_id: c.id, text, note, private_reply: privateReply, ...(mentions.length ? { mentions } : {}) });
  pending.set(clientId, { frame, node, m, conversationId: c.id, tries: 0 });
  typing(false);
  queueFrame(clientId, frame); // sent now if live, else on the next welcome; the hub dedupes by client_id
}

// Before the composer's own keys: an open /shortcut menu takes Enter, Tab and Escape.
const canned = cannedComposer({ textarea: reply, menu: $('canned-menu'), conversationId: () => state.openId, t });
const savedReplies = cannedDialog({
  dialog: $('canned-dialog'), list: $('canned-list'), form: $('canned-form'), error: $('canned-error'),
  isAdmin: () => Boolean(state.me) && state.me.role === 'admin', t, changed: () => canned.forget(),
});
export function forgetCanned() { canned.forget(); }
$('canned-open').addEventListener('click', () => savedReplies.open());
$('composer').addEventListener('submit', (e) => { e.preventDefault(); sendReply(); });
reply.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
});
reply.addEventListener('input', () => typing(pane.dataset.mode !== 'note' && reply.value.trim() !== ''));

export function typing(on) { // one "on" per burst, "off" after 3 s without a key or on send
  clearTimeout(typingTimer);
  if (on) typingTimer = setTimeout(() => typing(false), 3000);
  const target = on ? state.openId : null;
  if (state.typingOn === target || !isLive()) { if (!isLive()) state.typingOn = null; return; }
  if (state.typingOn) sendFrame({ type: 'typing', conversation_id: state.typingOn, on: false });
  if (target) sendFrame({ type: 'typing', conversation_id: target, on: true });
  state.typingOn = target;
}
export function forgetTyping() { clearTimeout(typingTimer); state.typingOn = null; }

// Presence
$('presence').addEventListener('change', (e) => {
  state.myPresence = e.target.value;
  sendFrame({ type: 'presence', state: state.myPresence });
});
