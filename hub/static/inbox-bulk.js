/* Bulk actions: a checkbox on each conversation in the list (and one selecting all shown),
 * then assign, resolve, pending, a label or a priority on the selection in one request
 * (POST /api/conversations/bulk). Each conversation changes as its own action would; those
 * refused are named in a message, the others change at once (their events follow). */
import { api, el, errorText } from './common.js';
import { $, flash, listEl, members, rows, state, t, title, conversations } from './inbox-state.js';
import { applyConversationChanges } from './inbox-actions.js';

const selected = new Set();
const bar = el('div', 'bulk');
bar.dataset.ib = 'bulk-bar';
bar.setAttribute('role', 'toolbar');
bar.setAttribute('aria-label', t('bulk-actions'));
const all = el('input');
all.type = 'checkbox';
all.dataset.ib = 'select-all';
const allLabel = el('label', 'inline');
allLabel.append(all, el('span', null, t('select-all')));
const count = el('span', 'muted');
count.dataset.ib = 'bulk-count';
const tools = el('span', 'bulk-tools');
tools.hidden = true;

function button(ib, key, onClick) {
  const b = el('button', 'ghost small', t(key));
  b.type = 'button';
  b.dataset.ib = ib;
  b.addEventListener('click', onClick);
  return b;
}
function picker(ib, key, options, onPick) {
  const select = el('select');
  select.dataset.ib = ib;
  select.setAttribute('aria-label', t(key));
  select.addEventListener('focus', () => {
    select.replaceChildren(el('option', null, t(key)), ...options().map(([value, text]) => { const o = el('option', null, text); o.value = value; return o; }));
    select.firstChild.value = '*';
  });
  select.replaceChildren(el('option', null, t(key)));
  select.firstChild.value = '*';
  select.addEventListener('change', () => { const v = select.value; select.value = '*'; if (v !== '*') onPick(v); });
  return select;
}
const assign = picker('bulk-assign', 'bulk-assign', () => [
  [state.me.user_id, t('assign-me')], ['', t('unassigned')],
  ...[...members].filter(([id]) => id !== state.me.user_id).map(([id, m]) => [id, m.name || t('agent')]),
], (v) => run({ action: 'assign', assignee_id: v || null }));
const priority = picker('bulk-priority', 'bulk-priority', () => [
  ...['urgent', 'high', 'medium', 'low'].map((p) => [p, t(`priority-${p}`)]), ['', t('no-priority')],
], (v) => run({ action: 'priority', priority: v || null }));
const label = el('input');
label.type = 'text';
label.maxLength = 50;
label.dataset.ib = 'bulk-label';
label.setAttribute('aria-label', t('bulk-label'));
label.placeholder = t('bulk-label');
label.setAttribute('list', 'known-labels');
label.addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  e.preventDefault();
  const value = label.value.trim().toLowerCase();
  if (value) { label.value = ''; run({ action: 'label', label: value }); }
});
tools.append(
  assign,
  button('bulk-resolve', 'resolve', () => run({ action: 'status', status: 'resolved' })),
  button('bulk-pending', 'mark-pending', () => run({ action: 'status', status: 'pending' })),
  priority, label,
  button('bulk-clear', 'bulk-clear', () => { selected.clear(); sync(); }),
);
bar.append(allLabel, count, tools);
listEl.before(bar);

/* What a bulk action's body changes on each conversation, as the event will say it. */
function changesOf(body) {
  if (body.action === 'assign') return { assignee_id: body.assignee_id };
  if (body.action === 'status') return { status: body.status };
  if (body.action === 'label') return { labels_add: [body.label] };
  return { priority: body.priority };
}

async function run(body) {
  const ids = [...selected];
  if (!ids.length) return;
  const r = await api('POST', '/api/conversations/bulk', Object.assign({ ids }, body)).catch(() => ({ ok: false }));
  if (!r.ok) return flash(t('action-failed', { why: errorText(r, r.status || '') }));
  const refused = [];
  r.data.results.forEach((item) => {
    if (item.ok) applyConversationChanges(item.id, changesOf(body), item.event_id);
    else refused.push(conversations.has(item.id) ? title(conversations.get(item.id)) : item.id);
  });
  if (refused.length) flash(t('bulk-refused', { n: refused.length, names: refused.join(', ') }));
  selected.clear();
  sync();
}

/* Each row gets its checkbox once; the selection keeps only conversations still shown. */
function sync() {
  rows.forEach((li, id) => {
    let box = li.querySelector('input.pick');
    if (!box) {
      box = el('input', 'pick');
      box.type = 'checkbox';
      box.dataset.ib = 'pick';
      box.addEventListener('change', () => { if (box.checked) selected.add(id); else selected.delete(id); sync(); });
      li.append(box);
    }
    const c = conversations.get(id);
    box.setAttribute('aria-label', t('select-conversation', { name: c ? title(c) : '' }));
    box.checked = selected.has(id);
  });
  const shown = [...rows.keys()].filter((id) => rows.get(id).isConnected);
  [...selected].forEach((id) => { if (!shown.includes(id)) selected.delete(id); });
  all.checked = shown.length > 0 && shown.every((id) => selected.has(id));
  all.indeterminate = selected.size > 0 && !all.checked;
  count.textContent = selected.size ? t('bulk-selected', { n: selected.size }) : '';
  tools.hidden = selected.size === 0;
}
all.addEventListener('change', () => {
  rows.forEach((li, id) => { if (li.isConnected && all.checked) selected.add(id); });
  if (!all.checked) selected.clear();
  sync();
});
new MutationObserver((records) => {
  if (records.some((r) => [...r.addedNodes, ...r.removedNodes].some((n) => n.tagName === 'LI'))) sync();
}).observe(listEl, { childList: true });
