/* Workflow pieces of the inbox: the "Pending" action, the counts on the status and assignee
 * filters, the emoji picker in the composer, and the single-key shortcuts with their help
 * sheet (`?`). The counts come from GET /api/conversations/counts: read when the list is drawn
 * again (any live change redraws it), at most once a second, so they follow events cheaply. */
import { api, el, lang } from './common.js';
import { emojiPicker } from './emoji.js';
import { $, conversations, listEl, reply, state, t } from './inbox-state.js';
import { change } from './inbox-actions.js';

$('pending-action').addEventListener('click', () => change({ status: 'pending' }));

// Counts on the filters
const STATUS_KEYS = { open: 'open', pending: 'pending', snoozed: 'snoozed', resolved: 'resolved' };
const ASSIGNEE_KEYS = { any: 'all-assignees', me: 'mine', none: 'unassigned' };
let countTimer = 0, counting = false, again = false;

async function loadCounts() {
  if (!state.active) return;
  if (counting) { again = true; return; }
  counting = true;
  try {
    const wanted = $('filter-assignee').value || 'any';
    // "Mentions" is no assignee: its status counts are those of the conversations naming me.
    const q = new URLSearchParams(wanted === 'mentions' ? { mentions: 'me' } : { assignee: wanted });
    if ($('filter-status').value) q.set('status', $('filter-status').value);
    const r = await api('GET', `/api/conversations/counts?${q}`).catch(() => ({ ok: false }));
    if (!r.ok) return;
    for (const option of $('filter-status').options) {
      if (option.value in STATUS_KEYS) option.textContent = t('count-of', { what: t(STATUS_KEYS[option.value]), n: r.data.status[option.value] });
    }
    for (const option of $('filter-assignee').options) {
      if (option.value in ASSIGNEE_KEYS) option.textContent = t('count-of', { what: t(ASSIGNEE_KEYS[option.value]), n: r.data.assignee[option.value] });
    }
  } finally {
    counting = false;
    if (again) { again = false; countsSoon(); }
  }
}
function countsSoon() { if (!countTimer) countTimer = setTimeout(() => { countTimer = 0; loadCounts(); }, 1000); }
new MutationObserver(countsSoon).observe(listEl, { childList: true, subtree: true, characterData: true });
['filter-status', 'filter-assignee'].forEach((n) => $(n).addEventListener('change', loadCounts));

// Emoji in the composer
emojiPicker($('emoji-open'), reply, { label: t, language: lang });

// Shortcuts: single keys, never while typing in a field or with a dialog open.
const SHORTCUTS = [
  ['/', 'shortcut-search'], ['Alt+↑ / Alt+↓', 'shortcut-move'], ['r', 'shortcut-reply'],
  ['n', 'shortcut-note'], ['e', 'shortcut-resolve'], ['p', 'shortcut-pending'],
  ['a', 'shortcut-assign-me'], ['?', 'shortcut-help'], ['Escape', 'shortcut-escape'],
];
const help = el('dialog', 'canned-dialog shortcuts-dialog');
help.dataset.ib = 'shortcuts-dialog';
help.setAttribute('aria-labelledby', 'shortcuts-title');
{
  const title = el('h3', null, t('shortcuts'));
  title.id = 'shortcuts-title';
  const close = el('button', 'ghost', t('close'));
  close.type = 'button';
  close.addEventListener('click', () => help.close());
  const list = el('dl', 'shortcuts');
  SHORTCUTS.forEach(([key, what]) => { const dt = el('dt'); dt.append(el('kbd', null, key)); list.append(dt, el('dd', null, t(what))); });
  const header = el('header');
  header.append(title, close);
  help.append(header, list);
  document.body.append(help);
}
$('shortcuts-open').addEventListener('click', () => help.showModal());

function typing(target) {
  return !!target && (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable);
}
const ACTIONS = {
  r: () => { $('mode-reply').click(); reply.focus(); },
  n: () => { $('mode-note').click(); reply.focus(); },
  e: () => change({ status: 'resolved' }),
  p: () => change({ status: 'pending' }),
  a: () => change({ assignee_id: state.me.user_id }),
};
document.addEventListener('keydown', (e) => {
  if (!state.active || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  if (typing(document.activeElement) || document.querySelector('dialog[open]')) return;
  if (e.key === '?') { e.preventDefault(); help.showModal(); return; }
  const action = ACTIONS[e.key];
  if (!action || !state.openId || !conversations.has(state.openId)) return;
  if (e.key === 'n' && $('mode-note').disabled) return;
  e.preventDefault();
  action();
});
