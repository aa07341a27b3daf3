/* Agents never miss a conversation. While the inbox is open: the number of conversations with
 * unread messages in the tab's title ("(3) …") and as a badge on its icon (drawn on a canvas,
 * set as a data: URL); a short sound (made with the Web Audio API) for a new conversation, a
 * new message in one assigned to this agent, or an @mention; and, while the tab is hidden, a
 * desktop notification (the Notification API) that brings the tab back and opens the
 * conversation. With the inbox closed: Web Push (the service worker /sw.js, subscribed with
 * the hub's VAPID key). What the agent wants of each is kept on the hub
 * (GET/PUT /api/me/notifications) and set in the "Notifications" dialog. */
import { api, el, errorText } from './common.js';
import strings from './strings.js';
import mine from './notify-strings.js';
import { $, conversations, name, state, t, title } from './inbox-state.js';
import { openConversation } from './inbox-thread.js';
import { mentioned } from './inbox-mentions.js';

Object.keys(mine).forEach((lang) => { strings[lang] = Object.assign(strings[lang] || {}, mine[lang]); });

const DEFAULTS = {
  sound_new_conversation: true, sound_own_messages: true, sound_mentions: true, desktop: true,
  push_assigned: true, push_team: true, push_mentions: true,
};
export const prefs = Object.assign({}, DEFAULTS);
const baseTitle = document.title;
const icon = document.querySelector('link[rel=icon]');
let shownCount = -1;

/* The title and the icon: how many conversations have unread messages. */
export function showUnread() {
  if (!state.me) { document.title = baseTitle; return; }
  const count = [...conversations.values()].filter((c) => c.unread > 0).length;
  if (count === shownCount) return;
  shownCount = count;
  document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
  document.documentElement.dataset.unread = String(count);
  icon.href = drawIcon(count);
}

function drawIcon(count) {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 32;
  const g = canvas.getContext('2d');
  g.fillStyle = '#2563eb';
  g.beginPath(); g.arc(14, 16, 12, 0, Math.PI * 2); g.fill();
  g.fillStyle = '#fff'; g.font = 'bold 14px sans-serif'; g.textAlign = 'center'; g.textBaseline = 'middle';
  g.fillText('S', 14, 17);
  if (count) {
    const label = count > 99 ? '99+' : String(count);
    g.fillStyle = '#dc2626';
    g.beginPath(); g.arc(23, 9, 9, 0, Math.PI * 2); g.fill();
    g.fillStyle = '#fff'; g.font = `bold ${label.length > 1 ? 9 : 12}px sans-serif`;
    g.fillText(label, 23, 10);
  }
  return canvas.toDataURL('image/png');
}

let audio = null;
/* Two short tones; nothing plays before the page has had a user gesture (the browser's rule). */
function chime() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  audio = audio || new Context();
  if (audio.state === 'suspended') audio.resume().catch(() => {});
  const at = audio.currentTime;
  [[880, 0], [1320, 0.12]].forEach(([hz, delay]) => {
    const tone = audio.createOscillator(), gain = audio.createGain();
    tone.type = 'sine';
    tone.frequency.value = hz;
    gain.gain.setValueAtTime(0.0001, at + delay);
    gain.gain.exponentialRampToValueAtTime(0.2, at + delay + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + delay + 0.25);
    tone.connect(gain).connect(audio.destination);
    tone.start(at + delay);
    tone.stop(at + delay + 0.3);
  });
}

function desktop(heading, body, conversationId) {
  if (!prefs.desktop || !document.hidden || !('Notification' in window) || Notification.permission !== 'granted') return;
  const note = new Notification(heading, { body: (body || '').slice(0, 120), tag: conversationId });
  note.onclick = () => { window.focus(); openConversation(conversationId); note.close(); };
}

/* Called by inbox-live.js for each event, before the page applies it. */
export function hear(eventName, data) {
  if (!state.me) return;
  if (eventName === 'message.created' && data.message) {
    const m = data.message;
    if (m.direction !== 'in' || m.note) return;
    const known = conversations.get(m.conversation_id);
    const watching = m.conversation_id === state.openId && !document.hidden;
    const who = (data.contact && data.contact.name) || (known && title(known)) || '';
    if (!known) {
      if (prefs.sound_new_conversation) chime();
      desktop(t('notify-new-conversation'), [who, m.text].filter(Boolean).join(': '), m.conversation_id);
    } else if (known.assignee_id === state.me.user_id && !watching) {
      if (prefs.sound_own_messages) chime();
      desktop(t('notify-new-message'), [who, m.text].filter(Boolean).join(': '), m.conversation_id);
    }
  } else if (eventName === 'mention.created' && (data.user_ids || []).includes(state.me.user_id) && data.by !== state.me.user_id) {
    mentioned.add(data.conversation_id);
    if (prefs.sound_mentions) chime();
    desktop(t('notify-mentioned', { name: name(data.by) }), data.preview || '', data.conversation_id);
  }
}

/* Preferences: read once after sign-in; a conversation named in the address (a push's click
 * on a closed inbox) is opened. */
export async function loadPrefs() {
  shownCount = -1;
  showUnread();
  const r = await api('GET', '/api/me/notifications').catch(() => ({ ok: false }));
  if (r.ok) Object.assign(prefs, r.data);
  const wanted = new URLSearchParams(location.search).get('conversation');
  if (wanted && /^[0-9a-f-]{36}$/.test(wanted)) {
    history.replaceState(null, '', location.pathname);
    openConversation(wanted);
  }
}

// The service worker asks an open inbox to open a conversation (a push notification's click).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (e) => {
    const d = e.data || {};
    if (d.type === 'open' && typeof d.conversation_id === 'string' && state.me) openConversation(d.conversation_id);
  });
}

// The dialog
const dialog = $('notify-dialog'), body = $('notify-body');
const status = el('p', 'muted');
status.setAttribute('role', 'status');

function toggle(key, label) {
  const box = el('input');
  box.type = 'checkbox';
  box.checked = !!prefs[key];
  box.dataset.ib = `notify-${key}`;
  box.addEventListener('change', async () => {
    if (key === 'desktop' && box.checked && 'Notification' in window && Notification.permission === 'default') {
      await Notification.requestPermission().catch(() => {});
    }
    prefs[key] = box.checked;
    const r = await api('PUT', '/api/me/notifications', prefs).catch(() => ({ ok: false }));
    status.textContent = r.ok ? t('notify-saved') : errorText(r, t('action-failed', { why: r.status || '' }));
  });
  const row = el('label', 'notify-row');
  row.append(box, el('span', null, t(label)));
  return row;
}

/* At sign-out: this browser's push subscription goes (here and at the push service), so a
 * shared browser shows no notices of the agent who left. Answers its endpoint (or null), which
 * the logout names too, for the hub to delete it should this request not get through. */
export async function forgetPush() {
  if (!('serviceWorker' in navigator)) return null;
  const registration = await navigator.serviceWorker.getRegistration('/');
  const sub = registration && await registration.pushManager.getSubscription();
  if (!sub) return null;
  await api('DELETE', '/api/me/push-subscriptions', { endpoint: sub.endpoint }).catch(() => {});
  await sub.unsubscribe().catch(() => {});
  return sub.endpoint;
}

async function pushRow() {
  const row = el('label', 'notify-row');
  const box = el('input');
  box.type = 'checkbox';
  box.dataset.ib = 'notify-push-device';
  row.append(box, el('span', null, t('notify-push-device')));
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) {
    box.disabled = true;
    row.append(el('span', 'muted', t('notify-push-unsupported')));
    return row;
  }
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  const current = await registration.pushManager.getSubscription().catch(() => null);
  box.checked = !!current;
  box.addEventListener('change', async () => {
    try {
      if (box.checked) {
        const key = await api('GET', '/api/push/key');
        if (!key.ok) throw new Error(errorText(key, String(key.status)));
        const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key.data.public_key });
        const kept = await api('POST', '/api/me/push-subscriptions', sub.toJSON());
        if (!kept.ok) { await sub.unsubscribe(); throw new Error(errorText(kept, String(kept.status))); }
      } else {
        const sub = await registration.pushManager.getSubscription();
        if (sub) {
          await api('DELETE', '/api/me/push-subscriptions', { endpoint: sub.endpoint }).catch(() => {});
          await sub.unsubscribe();
        }
      }
      status.textContent = t('notify-saved');
    } catch (err) {
      box.checked = !box.checked;
      status.textContent = t('notify-push-failed', { why: err.message || String(err) });
    }
  });
  return row;
}

async function openDialog() {
  const r = await api('GET', '/api/me/notifications').catch(() => ({ ok: false }));
  if (r.ok) Object.assign(prefs, r.data);
  status.textContent = '';
  const denied = 'Notification' in window && Notification.permission === 'denied';
  body.replaceChildren(
    el('p', 'muted', t('notify-help')),
    el('h4', null, t('notify-sounds')),
    toggle('sound_new_conversation', 'notify-sound-new'),
    toggle('sound_own_messages', 'notify-sound-own'),
    toggle('sound_mentions', 'notify-sound-mention'),
    el('h4', null, t('notify-desktop-title')),
    toggle('desktop', 'notify-desktop'),
  );
  if (denied) body.append(el('p', 'error', t('notify-desktop-denied')));
  body.append(
    el('h4', null, t('notify-push')),
    toggle('push_assigned', 'notify-push-assigned'),
    toggle('push_team', 'notify-push-team'),
    toggle('push_mentions', 'notify-push-mention'),
  );
  dialog.showModal();
  body.append(await pushRow().catch(() => el('p', 'muted', t('notify-push-unsupported'))), status);
}

$('notify-open').textContent = t('notifications');
$('filter-mentions').textContent = t('filter-mentions');
$('notify-title').textContent = t('notifications');
$('notify-open').addEventListener('click', () => { openDialog(); });
