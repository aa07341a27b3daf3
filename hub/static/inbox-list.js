/* The conversation list on the left: filters, the queue of unassigned conversations, and the
 * members and teams it names. */
import { api, clock, el, ms } from './common.js';
import {
  $, ICONS, KINDS, channels, conversations, filter, listEl, members, name, presence, rows, state, t, teams, title,
} from './inbox-state.js';
import { openConversation, renderAssignee, renderTeam } from './inbox-thread.js';
import { mentioned } from './inbox-mentions.js';
import { showUnread } from './inbox-notify.js';

const emptyEl = $('no-conversations');

export function loadChannels() {
  return api('GET', '/api/channels').then((r) => {
    if (!r.ok) return;
    r.data.items.forEach((c) => channels.set(c.id, c));
    const pick = $('filter-channel');
    pick.replaceChildren(pick.firstElementChild);
    r.data.items.forEach((c) => { const o = el('option', null, `${c.name} (${KINDS[c.kind] || c.kind})`); o.value = c.id; pick.append(o); });
    renderList();
  }).catch(() => {});
}

export async function loadTeams() {
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
export function loadQueue() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(async () => {
    const r = await api('GET', '/api/conversations/queue').catch(() => ({}));
    if (!r.ok || !state.me) return;
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

export async function loadMembers() {
  const [m, p] = await Promise.all([api('GET', '/api/members'), api('GET', '/api/presence')]).catch(() => [{}, {}]);
  if (m.ok) m.data.items.forEach((u) => members.set(u.user_id || u.id, u));
  if (p.ok) p.data.items.forEach((s) => presence.set(s.user_id, s.state));
  if (!members.has(state.me.user_id)) members.set(state.me.user_id, { name: state.me.name, role: state.me.role });
  renderAssignee();
}

function matches(c) {
  if (filter.status && c.status !== filter.status) return false;
  if (filter.assignee === 'me' && c.assignee_id !== state.me.user_id) return false;
  if (filter.assignee === 'none' && c.assignee_id) return false;
  if (filter.assignee === 'mentions' && !mentioned.has(c.id)) return false;
  if (filter.team === 'none' && c.team_id) return false;
  if (filter.team && filter.team !== 'none' && c.team_id !== filter.team) return false;
  if (filter.channel && c.channel_id !== filter.channel) return false;
  if (filter.label && !(c.labels || []).includes(filter.label)) return false;
  if (filter.priority === 'none' && c.priority) return false;
  if (filter.priority && filter.priority !== 'none' && c.priority !== filter.priority) return false;
  if (filter.attr && !(filter.attr.ids && filter.attr.ids.has(c.id))) return false; // the server's answer
  return true;
}

/* Answers where a socket opened after this load resumes (the answer's resume_from), or null. */
export async function loadConversations() {
  const q = new URLSearchParams({ limit: '100' });
  if (filter.status) q.set('status', filter.status);
  if (filter.assignee === 'mentions') q.set('mentions', 'me');
  else if (filter.assignee !== 'any') q.set('assignee', filter.assignee);
  if (filter.team) q.set('team_id', filter.team);
  if (filter.channel) q.set('channel_id', filter.channel);
  if (filter.label) q.set('label', filter.label);
  if (filter.priority) q.set('priority', filter.priority);
  const attr = filter.attr; // a custom attribute's value (inbox-attributes.js)
  if (attr) q.set(`attr.${attr.key}`, attr.value);
  const r = await api('GET', `/api/conversations?${q}`);
  if (!r.ok) return null;
  if (attr) attr.ids = new Set(r.data.items.map((item) => item.id));
  state.loaded = true;
  for (const item of r.data.items) {
    if (q.get('mentions')) mentioned.add(item.id);
    const known = conversations.get(item.id);
    if (known && ms(known.last_activity_at) > ms(item.last_activity_at)) continue; // live is newer
    conversations.set(item.id, Object.assign({}, known, item));
  }
  renderList();
  return r.data.resume_from || null;
}

export function renderList() {
  if (!state.me) return;
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
    b.setAttribute('aria-current', String(c.id === state.openId));
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
    if (c.kind === 'group') tags.append(el('span', 'tag', t('group')));
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
  showUnread();
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
