/* SosyoCRM agent inbox: plain ES modules, no framework, no build step.
 * REST under /api (cookie session + X-CSRF-Token on writes), realtime protocol v1 on /ws/agent.
 *
 * Consistency: the conversation list and the open thread are (re)loaded over REST after every
 * welcome that is not a resume (first connect, or after 4409 "cursor too old"), so nothing
 * published before the socket went live is missed; live events are merged in by id, so a
 * message is never shown twice. Messages seen live are also kept per conversation (last 50),
 * because the database may lag the stream by a moment (the persist worker).
 * Text from messages and names only ever reaches the page through textContent.
 */
import {
  api, clock, el, errorText, ib, languagePicker, ms, session, stamp, translatePage, translator, uid,
} from './common.js';
import { cannedComposer, cannedDialog } from './canned.js';
import { applyChanges, fill, messageEl } from './render.js';
import strings from './strings.js';

const t = translator(strings);
translatePage(t);
const KINDS = { webchat: 'Web chat', instagram: 'Instagram', messenger: 'Messenger', whatsapp: 'WhatsApp', telegram: 'Telegram' };
const ICONS = { webchat: 'W', instagram: 'IG', messenger: 'M', whatsapp: 'WA', telegram: 'TG' };
const HOUR = 3600e3;

const loginView = document.getElementById('login');
const appView = document.getElementById('app');
const $ = (name) => ib(name);
const loginError = $('login-error'), email = $('login-email'), password = $('login-password');
const statusEl = $('status'), listEl = $('conversations'), emptyEl = $('no-conversations');
const placeholder = $('placeholder'), pane = $('pane'), messagesEl = $('messages'), olderBtn = $('load-older');
const reply = $('reply'), typingEl = $('typing'), windowEl = $('window'), sendBtn = $('send');

// State
let me = null, active = false, loaded = false;
const conversations = new Map(); // id -> conversation as REST answers it, kept live
const rows = new Map(); // conversation id -> <li>
const channels = new Map(); // id -> channel
const members = new Map(); // user id -> {name, role}
const presence = new Map(); // user id -> online | away | offline
const teams = new Map(); // team id -> {name, assignment, member_ids}
const recent = new Map(); // conversation id -> messages seen live (bounded)
const reads = new Map(); // conversation id -> Map(user id -> event id)
const filter = { status: 'open', assignee: 'any', team: '', channel: '', label: '', priority: '' };
let openId = null, thread = new Map(), nextBefore = null, loadSeq = 0, loadingOlder = false, contactRead = null;
const pending = new Map(); // client_id -> {frame, node, m, conversationId, tries}
const readSent = new Map(); // conversation id -> last up_to sent
let ws = null, live = false, busy = false, cursor = null, tries = 0, timer = 0, countdown = 0;
let typingOn = null, typingTimer = 0, otherTypingTimer = 0, myPresence = 'online';

const name = (id) => (members.get(id) || {}).name || t('agent');
const title = (c) => (c.contact && (c.contact.name || c.contact.username)) || c.name
  || `${t('visitor')} ${String(c.contact_id || c.id).slice(0, 6)}`;
const eventAfter = (a, b) => { // stream ids "ms-seq"
  const [am, as] = String(a).split('-').map(Number), [bm, bs] = String(b).split('-').map(Number);
  return am > bm || (am === bm && as > bs);
};
let shownStatus = ['connecting', ''];
function setStatus(state, text) {
  shownStatus = [state, text];
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}
function flash(message) {
  statusEl.dataset.state = 'error';
  statusEl.textContent = message;
  setTimeout(() => { if (statusEl.textContent === message) setStatus(...shownStatus); }, 4000);
}

// Login and logout
function showLogin(message) {
  appView.hidden = true;
  loginView.hidden = false;
  loginError.textContent = message || '';
  loginError.hidden = !message;
  (message && email.value ? password : email).focus();
}

function start(data) {
  session.set(data.csrf_token);
  me = data.user;
  active = true;
  $('me').textContent = me.name || t('agent');
  $('admin-link').hidden = me.role !== 'admin';
  loginView.hidden = true;
  appView.hidden = false;
  renderList();
  api('GET', '/api/channels').then((r) => {
    if (!r.ok) return;
    r.data.items.forEach((c) => channels.set(c.id, c));
    const pick = $('filter-channel');
    pick.replaceChildren(pick.firstElementChild);
    r.data.items.forEach((c) => { const o = el('option', null, `${c.name} (${KINDS[c.kind] || c.kind})`); o.value = c.id; pick.append(o); });
    renderList();
  }).catch(() => {});
  loadMembers();
  loadTeams();
  connect();
}

async function loadTeams() {
  const r = await api('GET', '/api/teams').catch(() => ({}));
  if (!r.ok) return;
  teams.clear();
  r.data.items.forEach((team) => teams.set(team.id, team));
  const pick = $('filter-team');
  pick.replaceChildren(pick.children[0], pick.children[1]);
  r.data.items.forEach((team) => { const o = el('option', null, team.name); o.value = team.id; pick.append(o); });
  pick.value = filter.team && (filter.team === 'none' || teams.has(filter.team)) ? filter.team : '';
  renderTeam();
  renderList();
  loadQueue();
}

// The queue: open conversations nobody is assigned, by team
let queueTimer = 0;
function loadQueue() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(async () => {
    const r = await api('GET', '/api/conversations/queue').catch(() => ({}));
    if (!r.ok || !me) return;
    const button = $('queue');
    button.hidden = r.data.unassigned === 0;
    button.textContent = t('queue-waiting', { n: r.data.unassigned });
    button.title = r.data.teams.filter((q) => q.team_id && teams.has(q.team_id))
      .map((q) => t('queue-team', { team: teams.get(q.team_id).name, n: q.unassigned })).join(' · ');
  }, 300);
}
$('queue').addEventListener('click', () => {
  $('filter-status').value = 'open';
  $('filter-assignee').value = 'none';
  onFilter();
});

async function loadMembers() {
  const [m, p] = await Promise.all([api('GET', '/api/members'), api('GET', '/api/presence')]).catch(() => [{}, {}]);
  if (m.ok) m.data.items.forEach((u) => members.set(u.user_id || u.id, u));
  if (p.ok) p.data.items.forEach((s) => presence.set(s.user_id, s.state));
  if (!members.has(me.user_id)) members.set(me.user_id, { name: me.name, role: me.role });
  renderAssignee();
}

function stop() {
  active = false; loaded = false; live = false; cursor = null; openId = null; me = null;
  session.clear();
  clearTimeout(timer); clearInterval(countdown);
  if (ws) { ws.onclose = ws.onmessage = null; ws.close(1000); ws = null; }
  [conversations, rows, recent, pending, readSent, reads, members, presence].forEach((m) => m.clear());
  listEl.replaceChildren();
  pane.hidden = true;
  placeholder.hidden = false;
}

session.onExpired(() => { if (active) { stop(); showLogin(t('session-ended')); } });

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!email.value.trim() || !password.value) return showLogin(t('enter-credentials'));
  loginError.hidden = true;
  $('login-submit').disabled = true;
  try {
    const r = await api('POST', '/api/auth/login', { email: email.value.trim(), password: password.value });
    if (!r.ok) return showLogin(errorText(r, t('sign-in-failed')));
    password.value = '';
    start(r.data);
  } catch (err) {
    showLogin(t('unreachable'));
  } finally {
    $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', async () => {
  try { await api('POST', '/api/auth/logout'); } catch (e) { /* the cookie expires anyway */ }
  stop();
  showLogin();
});
languagePicker($('language'));

// Conversation list
function matches(c) {
  if (filter.status && c.status !== filter.status) return false;
  if (filter.assignee === 'me' && c.assignee_id !== me.user_id) return false;
  if (filter.assignee === 'none' && c.assignee_id) return false;
  if (filter.team === 'none' && c.team_id) return false;
  if (filter.team && filter.team !== 'none' && c.team_id !== filter.team) return false;
  if (filter.channel && c.channel_id !== filter.channel) return false;
  if (filter.label && !(c.labels || []).includes(filter.label)) return false;
  if (filter.priority === 'none' && c.priority) return false;
  if (filter.priority && filter.priority !== 'none' && c.priority !== filter.priority) return false;
  return true;
}

async function loadConversations() {
  const q = new URLSearchParams({ limit: '100' });
  if (filter.status) q.set('status', filter.status);
  if (filter.assignee !== 'any') q.set('assignee', filter.assignee);
  if (filter.team) q.set('team_id', filter.team);
  if (filter.channel) q.set('channel_id', filter.channel);
  if (filter.label) q.set('label', filter.label);
  if (filter.priority) q.set('priority', filter.priority);
  const r = await api('GET', `/api/conversations?${q}`);
  if (!r.ok) return;
  loaded = true;
  for (const item of r.data.items) {
    const known = conversations.get(item.id);
    if (known && ms(known.last_activity_at) > ms(item.last_activity_at)) continue; // live is newer
    conversations.set(item.id, Object.assign({}, known, item));
  }
  renderList();
}

function renderList() {
  if (!me) return;
  const shown = [...conversations.values()].filter(matches).sort((a, b) => ms(b.last_activity_at) - ms(a.last_activity_at));
  emptyEl.hidden = shown.length > 0;
  const keep = new Set(shown.map((c) => c.id));
  rows.forEach((li, id) => { if (!keep.has(id)) li.remove(); });
  const known = new Set();
  conversations.forEach((c) => (c.labels || []).forEach((l) => known.add(l)));
  $('known-labels').replaceChildren(...[...known].sort().map((l) => { const o = el('option'); o.value = l; return o; }));
  shown.forEach((c) => {
    let li = rows.get(c.id);
    if (!li) {
      li = el('li');
      const b = el('button', 'conv');
      b.type = 'button';
      b.dataset.ib = 'conversation';
      b.dataset.id = c.id;
      b.append(el('span', 'icon'), el('span', 'name'), el('span', 'when'), el('span', 'preview'), el('span', 'tags'));
      b.addEventListener('click', () => openConversation(c.id));
      li.append(b);
      rows.set(c.id, li);
    }
    const b = li.firstChild;
    const channel = channels.get(c.channel_id);
    const kind = c.channel_kind || (channel && channel.kind) || '';
    b.setAttribute('aria-current', String(c.id === openId));
    b.dataset.status = c.status;
    b.children[0].textContent = ICONS[kind] || '•';
    b.children[0].dataset.kind = kind;
    b.children[0].title = KINDS[kind] || kind;
    b.children[1].textContent = title(c);
    b.children[2].textContent = clock(c.last_activity_at);
    b.children[3].textContent = c.last_message_preview || '';
    const tags = b.children[4];
    tags.replaceChildren();
    if (c.unread) {
      const badge = el('span', 'tag unread', String(c.unread));
      badge.dataset.ib = 'unread';
      badge.title = t('unread', { n: c.unread });
      tags.append(badge);
    }
    if (c.kind === 'comment') tags.append(el('span', 'tag', t('comment')));
    if (c.status !== 'open') tags.append(el('span', `tag ${c.status}`, t(c.status)));
    if (c.assignee_id) tags.append(el('span', 'tag who', name(c.assignee_id)));
    if (c.team_id && teams.has(c.team_id)) tags.append(el('span', 'tag team', teams.get(c.team_id).name));
    if (c.priority) {
      const tag = el('span', 'tag priority', t(`priority-${c.priority}`));
      tag.dataset.priority = c.priority;
      tags.append(tag);
    }
    (c.labels || []).forEach((l) => tags.append(el('span', 'tag label', l)));
    listEl.appendChild(li); // appending an existing node moves it: this sorts the list
  });
}

function onFilter() {
  filter.status = $('filter-status').value;
  filter.assignee = $('filter-assignee').value;
  filter.team = $('filter-team').value;
  filter.channel = $('filter-channel').value;
  filter.label = $('filter-label').value.trim().toLowerCase();
  filter.priority = $('filter-priority').value;
  renderList();
  loadConversations().catch(() => {});
}
['filter-status', 'filter-assignee', 'filter-team', 'filter-channel', 'filter-priority'].forEach((n) => $(n).addEventListener('change', onFilter));
$('filter-label').addEventListener('change', onFilter);

// The open conversation
async function openConversation(id, keep) {
  const c = conversations.get(id);
  if (!c) return;
  if (openId !== id) { typing(false); canned.forget(); }
  const switching = openId !== id || !keep;
  openId = id;
  c.unread = 0;
  appView.dataset.view = 'thread';
  renderList();
  placeholder.hidden = true;
  pane.hidden = false;
  renderHeader();
  if (switching) {
    messagesEl.querySelectorAll('.msg').forEach((m) => m.remove());
    thread = new Map();
    typingEl.hidden = true;
    olderBtn.hidden = true;
    $('history-start').hidden = true;
    contactRead = null;
    $('post').hidden = true;
    setMode(c.kind === 'comment' ? 'reply' : $('mode-note').checked ? 'note' : 'reply');
    pending.forEach((p) => { if (p.conversationId === id) place(p.node); });
    if (!$('contact-panel').hidden) showContact(c.contact_id);
  }
  const seq = ++loadSeq;
  const [detail, page] = await Promise.all([
    api('GET', `/api/conversations/${encodeURIComponent(id)}`),
    api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50`),
  ]);
  if (seq !== loadSeq || openId !== id) return;
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
  if (page.ok) {
    page.data.items.forEach(addMessage);
    nextBefore = page.data.next_before;
    olderBtn.hidden = !nextBefore;
    $('history-start').hidden = !!nextBefore;
  }
  (recent.get(id) || []).forEach(addMessage);
  showPost();
  renderSeen();
  messagesEl.scrollTop = messagesEl.scrollHeight;
  markRead();
  if (switching && matchMedia('(min-width: 761px)').matches) reply.focus();
}

function renderHeader() {
  const c = conversations.get(openId);
  if (!c) return;
  $('title').textContent = title(c);
  const channel = channels.get(c.channel_id);
  const parts = [channel ? `${channel.name} · ${KINDS[channel.kind] || channel.kind}` : KINDS[c.channel_kind] || ''];
  parts.push(c.status === 'snoozed' && c.snoozed_until ? t('snoozed-until', { t: stamp(c.snoozed_until) }) : t(c.status));
  $('subtitle').textContent = parts.filter(Boolean).join(' · ');
  $('resolve').hidden = c.status === 'resolved';
  $('reopen').hidden = c.status !== 'resolved' && c.status !== 'snoozed';
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

function renderAssignee() {
  const pick = $('assignee');
  const options = [el('option', null, t('nobody'))];
  options[0].value = '';
  [...members.entries()].sort((a, b) => (a[1].name || '').localeCompare(b[1].name || '')).forEach(([id, m]) => {
    const state = presence.get(id) || 'offline';
    const o = el('option', null, `${m.name || id}${id === me.user_id ? ` (${t('you')})` : ''} · ${t(state)}`);
    o.value = id;
    o.dataset.presence = state;
    options.push(o);
  });
  pick.replaceChildren(...options);
  const c = conversations.get(openId);
  pick.value = (c && c.assignee_id) || '';
  renderList();
}

function renderTeam() {
  const pick = $('team');
  $('team-pick').hidden = teams.size === 0;
  const none = el('option', null, t('no-team'));
  none.value = '';
  pick.replaceChildren(none, ...[...teams.values()].map((team) => { const o = el('option', null, team.name); o.value = team.id; return o; }));
  const c = conversations.get(openId);
  pick.value = (c && c.team_id && teams.has(c.team_id) && c.team_id) || '';
}

function showPost() {
  const c = conversations.get(openId);
  if (!c || c.kind !== 'comment') return;
  const first = [...thread.values()].find((m) => m.raw && m.raw.media);
  const media = first && first.raw.media;
  $('post').textContent = media && media.id ? t('comment-on', { id: `${media.media_product_type || ''} ${media.id}`.trim() }) : t('comment-on-post');
  $('post').hidden = false;
}

async function loadOlder() {
  if (!nextBefore || !openId || loadingOlder) return;
  const id = openId;
  loadingOlder = true;
  olderBtn.disabled = true;
  olderBtn.textContent = t('loading-older');
  const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50&before=${encodeURIComponent(nextBefore)}`).catch(() => ({ ok: false }));
  loadingOlder = false;
  olderBtn.disabled = false;
  olderBtn.textContent = t('load-older');
  if (!r.ok || openId !== id) return;
  const before = messagesEl.scrollHeight;
  r.data.items.forEach(addMessage);
  messagesEl.scrollTop += messagesEl.scrollHeight - before; // keep the reader where they were
  nextBefore = r.data.next_before;
  olderBtn.hidden = !nextBefore;
  $('history-start').hidden = !!nextBefore;
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
function place(node) { // insert in order, after the top markers
  let after = messagesEl.lastElementChild;
  while (after && after.classList.contains('msg') && later(after, node)) after = after.previousElementSibling;
  messagesEl.insertBefore(node, after ? after.nextSibling : $('history-start').nextSibling);
}

function addMessage(m) {
  if (m.conversation_id !== openId) return;
  const known = thread.get(m.id);
  if (known) { // REST and live agree on ids; keep the furthest status
    if (m.status && m.status !== known.status) { applyChanges(known, { status: m.status, error: m.error }); fill(known.node, known, t); }
    return;
  }
  const stick = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
  const p = m.client_id && pending.get(m.client_id);
  const copy = Object.assign({}, m);
  let node;
  if (p) {
    pending.delete(m.client_id);
    node = p.node;
    node.classList.remove('sending', 'failed');
    node.remove();
    fill(node, copy, t);
  } else {
    node = messageEl(copy, t);
  }
  copy.node = node;
  thread.set(m.id, copy);
  if (contactRead && copy.direction === 'out' && copy.event_id && !eventAfter(copy.event_id, contactRead)) applyChanges(copy, { status: 'read' });
  place(node);
  if (stick || p) messagesEl.scrollTop = messagesEl.scrollHeight;
}

function renderSeen() {
  const positions = reads.get(openId);
  const names = [];
  if (positions) positions.forEach((upTo, user) => { if (user !== me.user_id) names.push(name(user)); });
  $('seen').textContent = names.length ? t('seen-by', { names: names.join(', ') }) : '';
  $('seen').hidden = !names.length;
}

function markRead() {
  const c = conversations.get(openId);
  if (!c || !c.last_event_id || !live || document.hidden || readSent.get(c.id) === c.last_event_id) return;
  readSent.set(c.id, c.last_event_id);
  ws.send(JSON.stringify({ type: 'read', conversation_id: c.id, up_to: c.last_event_id }));
}
document.addEventListener('visibilitychange', markRead);

// Conversation actions
async function change(body) {
  const id = openId;
  const r = await api('PATCH', `/api/conversations/${encodeURIComponent(id)}`, body).catch(() => ({ ok: false }));
  if (!r.ok) return flash(t('action-failed', { why: errorText(r, r.status || '') }));
  applyConversationChanges(id, r.data.changes, r.data.event_id); // the event follows; applying twice is harmless
}
$('resolve').addEventListener('click', () => change({ status: 'resolved' }));
$('reopen').addEventListener('click', () => change({ status: 'open' }));
$('assignee').addEventListener('change', (e) => change({ assignee_id: e.target.value || null }));
$('team').addEventListener('change', (e) => change({ team_id: e.target.value || null }));
$('priority').addEventListener('change', (e) => change({ priority: e.target.value || null }));
$('snooze').addEventListener('change', (e) => {
  const choice = e.target.value;
  e.target.value = '';
  const at = new Date();
  if (choice === 'custom') { $('snooze-form').hidden = false; $('snooze-at').focus(); return; }
  if (choice === '1h') at.setTime(at.getTime() + HOUR);
  else if (choice === 'tomorrow') { at.setDate(at.getDate() + 1); at.setHours(9, 0, 0, 0); }
  else if (choice === 'week') { at.setDate(at.getDate() + ((8 - at.getDay()) % 7 || 7)); at.setHours(9, 0, 0, 0); }
  else return;
  change({ status: 'snoozed', snoozed_until: at.toISOString() });
});
$('snooze-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const at = new Date($('snooze-at').value);
  if (isNaN(at)) return;
  $('snooze-form').hidden = true;
  change({ status: 'snoozed', snoozed_until: at.toISOString() });
});
$('label-input').addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  e.preventDefault();
  const label = e.target.value.trim().toLowerCase();
  const c = conversations.get(openId);
  if (!label || !c) return;
  e.target.value = '';
  change({ labels: [...new Set([...(c.labels || []), label])] });
});
$('back').addEventListener('click', () => { appView.dataset.view = 'list'; const li = rows.get(openId); if (li) li.firstChild.focus(); });

// `routed`: what routing did as of event `asOf`; a person's later choice (a later event) stays.
function applyConversationChanges(id, changes, eventId, routed, asOf) {
  const c = conversations.get(id);
  if (!c || !changes) return;
  const who = 'assignee_id' in changes || 'team_id' in changes;
  if (who && routed && c.chosen_at && eventAfter(c.chosen_at, asOf)) return;
  if (who && eventId && !routed) c.chosen_at = eventId;
  if (changes.status) { c.status = changes.status; c.snoozed_until = changes.snoozed_until || null; }
  if ('assignee_id' in changes) c.assignee_id = changes.assignee_id;
  if ('team_id' in changes) c.team_id = changes.team_id;
  if (Array.isArray(changes.labels)) c.labels = changes.labels;
  if (Array.isArray(changes.labels_add)) c.labels = [...new Set([...(c.labels || []), ...changes.labels_add])].sort();
  if ('priority' in changes) c.priority = changes.priority;
  renderList();
  if (id === openId) renderHeader();
}

// Composer
function setMode(mode) {
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
  if (c.kind === 'comment' && privateReply) return { open: now < last + 168 * HOUR, closes: last + 168 * HOUR };
  if (c.kind === 'comment' || !['whatsapp', 'messenger', 'instagram'].includes(c.channel_kind)) return { open: true, closes: null };
  if (now < last + 24 * HOUR) return { open: true, closes: last + 24 * HOUR };
  if (c.channel_kind !== 'whatsapp' && now < last + 168 * HOUR) return { open: true, closes: last + 168 * HOUR, human: true };
  return { open: false, closes: last + (c.channel_kind === 'whatsapp' ? 24 : 168) * HOUR };
}

function renderWindow() {
  const c = conversations.get(openId);
  if (!c) return;
  const note = pane.dataset.mode === 'note';
  const w = messagingWindow(c, $('private-reply').checked);
  const now = Date.now();
  windowEl.dataset.open = String(w.open);
  windowEl.textContent = !w.closes ? t('window-none')
    : w.open ? t(w.human ? 'window-human' : 'window-left', { t: duration(w.closes - now) })
      : t('window-closed', { t: duration(now - w.closes) });
  windowEl.hidden = note || !w.closes;
  const blocked = !note && !w.open;
  reply.disabled = blocked;
  sendBtn.disabled = blocked;
}
setInterval(renderWindow, 30e3);

function sendReply() {
  const text = reply.value.trim();
  const c = conversations.get(openId);
  if (!text || !c || sendBtn.disabled) return;
  reply.value = '';
  const note = pane.dataset.mode === 'note';
  const privateReply = !note && c.kind === 'comment' && $('private-reply').checked;
  const clientId = uid();
  const m = { id: '', conversation_id: c.id, direction: 'out', text, note, private_reply: privateReply, sent_at: new Date().toISOString(),
    status: note ? null : 'pending', sender: { type: 'agent', id: me.user_id, name: me.name }, kind: privateReply ? 'dm' : c.kind };
  const node = messageEl(m, t);
  node.classList.add('sending');
  node.dataset.clientId = clientId;
  place(node);
  messagesEl.scrollTop = messagesEl.scrollHeight;
  const frame = JSON.stringify({ type: 'message.send', client_id: clientId, conversation_id: c.id, text, note, private_reply: privateReply });
  pending.set(clientId, { frame, node, m, conversationId: c.id, tries: 0 });
  typing(false);
  if (live) ws.send(frame); // otherwise sent on the next welcome; the hub dedupes by client_id
}

// Before the composer's own keys: an open /shortcut menu takes Enter, Tab and Escape.
const canned = cannedComposer({ textarea: reply, menu: $('canned-menu'), conversationId: () => openId, t });
const savedReplies = cannedDialog({
  dialog: $('canned-dialog'), list: $('canned-list'), form: $('canned-form'), error: $('canned-error'),
  isAdmin: () => Boolean(me) && me.role === 'admin', t, changed: () => canned.forget(),
});
$('canned-open').addEventListener('click', () => savedReplies.open());
$('composer').addEventListener('submit', (e) => { e.preventDefault(); sendReply(); });
reply.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
});
reply.addEventListener('input', () => typing(pane.dataset.mode !== 'note' && reply.value.trim() !== ''));

function typing(on) { // one "on" per burst, "off" after 3 s without a key or on send
  clearTimeout(typingTimer);
  if (on) typingTimer = setTimeout(() => typing(false), 3000);
  const target = on ? openId : null;
  if (typingOn === target || !live) { if (!live) typingOn = null; return; }
  if (typingOn) ws.send(JSON.stringify({ type: 'typing', conversation_id: typingOn, on: false }));
  if (target) ws.send(JSON.stringify({ type: 'typing', conversation_id: target, on: true }));
  typingOn = target;
}

// Presence
$('presence').addEventListener('change', (e) => {
  myPresence = e.target.value;
  if (live) ws.send(JSON.stringify({ type: 'presence', state: myPresence }));
});

// Search
let searchTimer = 0, searchSeq = 0;
const results = $('search-results');
$('search').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  const q = e.target.value.trim();
  if (q.length < 2) { results.hidden = true; return; }
  searchTimer = setTimeout(() => search(q), 250);
});
$('search-form').addEventListener('submit', (e) => { e.preventDefault(); const q = $('search').value.trim(); if (q.length >= 2) search(q); });
async function search(q) {
  const seq = ++searchSeq;
  const r = await api('GET', `/api/search?q=${encodeURIComponent(q)}`).catch(() => ({ ok: false }));
  if (seq !== searchSeq || !r.ok) return;
  const items = [];
  const entry = (text, sub, onClick) => {
    const b = el('button', 'result');
    b.type = 'button';
    b.dataset.ib = 'search-result';
    b.append(el('span', null, text), el('small', 'muted', sub));
    b.addEventListener('click', () => { results.hidden = true; onClick(); });
    return b;
  };
  if (r.data.contacts.length) items.push(el('h4', null, t('search-contacts')));
  r.data.contacts.forEach((c) => items.push(entry(c.name || c.username || c.id.slice(0, 8), c.username || '', () => showContact(c.id, true))));
  if (r.data.messages.length) items.push(el('h4', null, t('search-messages')));
  r.data.messages.forEach((m) => items.push(entry(m.text || '', stamp(m.sent_at), () => openById(m.conversation_id))));
  if (!items.length) items.push(el('p', 'muted', t('search-none')));
  results.replaceChildren(...items);
  results.hidden = false;
}

async function openById(id) {
  if (!conversations.has(id)) {
    const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}`);
    if (!r.ok) return;
    conversations.set(id, r.data);
  }
  openConversation(id);
}

// Contact panel
async function showContact(contactId, openLatest) {
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
  exportBtn.hidden = me.role !== 'admin';
  exportBtn.onclick = () => exportContact(c.id);
  panel.hidden = false;
  $('contact-toggle').setAttribute('aria-expanded', 'true');
  if (openLatest && c.conversations.length && !c.conversations.some((x) => x.id === openId)) openConversation(c.conversations[0].id);
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
  const c = conversations.get(openId);
  if (!$('contact-panel').hidden) { $('contact-panel').hidden = true; $('contact-toggle').setAttribute('aria-expanded', 'false'); } else if (c) showContact(c.contact_id);
});
$('contact-close').addEventListener('click', () => { $('contact-panel').hidden = true; $('contact-toggle').setAttribute('aria-expanded', 'false'); });

// Keyboard: "/" searches, Alt+↑/↓ moves between conversations, Escape closes what is open.
document.addEventListener('keydown', (e) => {
  if (!active) return;
  const typingInField = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
  if (e.key === '/' && !typingInField) { e.preventDefault(); $('search').focus(); return; }
  if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
    e.preventDefault();
    const ids = [...listEl.querySelectorAll('[data-ib=conversation]')].map((b) => b.dataset.id);
    const at = ids.indexOf(openId);
    const next = ids[Math.min(ids.length - 1, Math.max(0, at + (e.key === 'ArrowDown' ? 1 : -1)))];
    if (next) openConversation(next);
    return;
  }
  if (e.key === 'Escape') {
    if (!results.hidden) results.hidden = true;
    else if (!$('contact-panel').hidden) $('contact-panel').hidden = true;
    else if (!$('snooze-form').hidden) $('snooze-form').hidden = true;
    else appView.dataset.view = 'list';
  }
});

// Realtime
async function connect() {
  clearTimeout(timer); clearInterval(countdown);
  if (!active || ws || busy) return;
  busy = true;
  setStatus('connecting', t('connecting'));
  let r;
  try {
    r = await api('POST', '/api/agent/socket-token'); // short-lived: a fresh one for every connect
  } catch (e) {
    r = { ok: false, status: 0 };
  }
  busy = false;
  if (!active) return;
  if (!r.ok) return retry();
  const s = ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/agent`);
  let last = Date.now(), pingAt = 0;
  const pinger = setInterval(() => { // a half-open socket never closes by itself
    if (pingAt && last < pingAt) return closed(4000);
    if (live) { pingAt = Date.now(); s.send('{"type":"ping"}'); }
  }, 25000);
  const closed = (code) => {
    if (ws !== s) return;
    clearInterval(pinger);
    ws = null; live = false; typingOn = null;
    s.onclose = s.onmessage = null;
    if (code === 4000) s.close();
    if (code === 4409) cursor = null; // too old to resume: the next welcome reloads over REST
    retry();
  };
  s.onopen = () => s.send(JSON.stringify(cursor ? { type: 'hello', token: r.data.token, resume_from: cursor } : { type: 'hello', token: r.data.token }));
  s.onclose = (e) => closed(e.code);
  s.onmessage = (e) => {
    last = Date.now();
    let f;
    try { f = JSON.parse(e.data); } catch (err) { return; }
    onFrame(s, f);
  };
}

function retry() {
  if (!active) return;
  const base = Math.min(30000, 500 * 2 ** tries++);
  const delay = base / 2 + Math.random() * base / 2; // exponential backoff with jitter
  const at = Date.now() + delay;
  const show = () => setStatus('offline', delay > 1500 ? t('reconnecting-in', { s: Math.ceil((at - Date.now()) / 1000) }) : t('reconnecting'));
  show();
  clearInterval(countdown);
  countdown = setInterval(show, 1000);
  timer = setTimeout(connect, delay);
  if (!loaded) loadConversations().catch(() => {});
}

function onFrame(s, f) {
  if (f.type === 'welcome') {
    live = true; tries = 0;
    cursor = f.cursor;
    setStatus('live', t('live'));
    if (myPresence !== 'online') s.send(JSON.stringify({ type: 'presence', state: myPresence }));
    if (!f.resumed) {
      loadConversations().catch(() => {});
      loadMembers().catch(() => {});
      if (openId) openConversation(openId, true);
    }
    pending.forEach((p) => s.send(p.frame)); // the hub dedupes by client_id
    markRead();
  } else if (f.type === 'event') {
    cursor = f.id;
    onEvent(f.id, f.name, f.data || {});
  } else if (f.type === 'error' && !f.client_id) {
    // typing/read on a conversation the database does not have yet (the persist worker lags
    // the stream): forget that typing was announced so the next key press tries again.
    if (f.code === 'not_found') typingOn = null;
  } else if (f.type === 'error') {
    const p = pending.get(f.client_id);
    if (!p) return;
    if (f.code === 'not_found' && p.tries++ < 3) { // a brand-new conversation may not be stored yet
      setTimeout(() => { if (live && pending.has(f.client_id)) ws.send(p.frame); }, 1000);
      return;
    }
    pending.delete(f.client_id);
    p.node.classList.remove('sending');
    p.node.classList.add('failed');
    fill(p.node, Object.assign(p.m, { status: 'failed', error: { message: f.message } }), t);
  }
}

function onEvent(id, eventName, data) {
  if (eventName === 'message.created' && data.message) {
    const m = Object.assign({}, data.message, { event_id: id });
    let c = conversations.get(m.conversation_id);
    if (!c) {
      c = { id: m.conversation_id, channel_id: m.channel_id, contact_id: m.contact_id, channel_kind: m.channel_kind, kind: m.kind,
        status: 'open', unread: 0, labels: [], assignee_id: null, last_activity_at: m.sent_at, last_message_preview: '', contact: { id: m.contact_id } };
      conversations.set(c.id, c);
    }
    if (data.contact && data.contact.name) c.contact = Object.assign({}, c.contact, { name: data.contact.name });
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
    if (c.id === openId) {
      addMessage(m);
      if (m.sender && m.sender.type === 'contact') typingEl.hidden = true;
      renderHeader();
      markRead();
    } else if (m.direction === 'in' && !m.note) {
      c.unread = (c.unread || 0) + 1;
    }
    renderList();
  } else if (eventName === 'message.updated' && data.message_id) {
    const buffered = (recent.get(data.conversation_id) || []).find((m) => m.id === data.message_id);
    if (buffered) applyChanges(buffered, data.changes || {});
    const m = thread.get(data.message_id);
    if (m) { applyChanges(m, data.changes || {}); fill(m.node, m, t); }
  } else if (eventName === 'typing') {
    if (data.conversation_id !== openId || !data.by || (data.by.type === 'agent' && data.by.id === me.user_id)) return;
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
      if (data.read.user_id === me.user_id && c && c.last_event_id && !eventAfter(c.last_event_id, data.read.up_to)) { c.unread = 0; renderList(); }
      if (data.conversation_id === openId) renderSeen();
    }
    if (data.contact_read_up_to && data.conversation_id === openId) {
      contactRead = data.contact_read_up_to;
      thread.forEach((m) => {
        if (m.direction === 'out' && !m.note && m.event_id && !eventAfter(m.event_id, contactRead) && m.status !== 'read') {
          applyChanges(m, { status: 'read' });
          fill(m.node, m, t);
        }
      });
    }
  } else if (eventName === 'contact.updated' && data.contact_id) {
    conversations.forEach((c) => {
      if (c.contact_id === data.contact_id) c.contact = Object.assign({}, c.contact, { name: data.name || (c.contact || {}).name, username: data.username || (c.contact || {}).username });
    });
    renderList();
    if (openId) renderHeader();
  } else if (eventName === 'contact.deleted' && data.contact_id) {
    // The person was erased: their conversations leave the list, and the thread if open.
    const gone = new Set(data.conversation_ids || []);
    // Erased from one channel only (its data deleted at disconnect): just those listed go.
    if (!data.channel_id) conversations.forEach((c) => { if (c.contact_id === data.contact_id) gone.add(c.id); });
    gone.forEach((id) => {
      conversations.delete(id); recent.delete(id); reads.delete(id);
      const li = rows.get(id);
      if (li) { li.remove(); rows.delete(id); }
    });
    if (typingOn && gone.has(typingOn)) { clearTimeout(typingTimer); typingOn = null; }
    if (openId && gone.has(openId)) {
      openId = null; thread = new Map(); loadSeq++;
      messagesEl.querySelectorAll('.msg').forEach((m) => m.remove());
      pane.hidden = true; placeholder.hidden = false; $('contact-panel').hidden = true;
      appView.dataset.view = 'list';
    }
    renderList();
  } else if (eventName === 'presence' && data.user_id) {
    presence.set(data.user_id, data.state);
    if (!members.has(data.user_id)) members.set(data.user_id, { name: data.name });
    renderAssignee();
  } else if (eventName === 'routing.updated') {
    loadTeams();
  }
  if (eventName === 'message.created') loadQueue();
}

window.addEventListener('online', () => { if (active && !ws) { tries = 0; connect(); } });

// Boot
api('GET', '/api/me').then((r) => (r.ok ? start(Object.assign({ csrf_token: r.data.csrf_token }, r.data)) : showLogin()),
  () => showLogin(t('unreachable')));
