/* What an agent does to the open conversation (status, snooze, assignee, team, priority,
 * labels), and how such a change, theirs or anyone's, is applied to what the page shows. */
import { api, errorText } from './common.js';
import { $, HOUR, appView, conversations, eventAfter, flash, rows, state, t } from './inbox-state.js';
import { renderList } from './inbox-list.js';
import { renderHeader } from './inbox-thread.js';

export async function change(body) {
  const id = state.openId;
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
  const c = conversations.get(state.openId);
  if (!label || !c) return;
  e.target.value = '';
  change({ labels: [...new Set([...(c.labels || []), label])] });
});
$('back').addEventListener('click', () => { appView.dataset.view = 'list'; const li = rows.get(state.openId); if (li) li.firstChild.focus(); });

// `routed`: what routing did as of event `asOf`; a person's later choice (a later event) stays.
export function applyConversationChanges(id, changes, eventId, routed, asOf) {
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
  if (id === state.openId) renderHeader();
}
