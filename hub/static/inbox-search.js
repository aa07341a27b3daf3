/* Search (contacts and messages) from the top bar: as the agent types, with filters for the
 * channel, the conversation's status, type and label, and the days the message was sent; the
 * matches marked in the results (search-highlight.js), and "More" for the next page. */
import { api, el, stamp } from './common.js';
import { $, KINDS, channels, t, title } from './inbox-state.js';
import { openById, showContact } from './inbox-contact.js';
import { highlighted } from './search-highlight.js';

export const results = $('search-results');
const input = $('search');
let timer = 0, seq = 0, query = '', nextCursor = null;

const select = (name, options) => {
  const s = el('select');
  s.dataset.ib = name;
  s.setAttribute('aria-label', t(name));
  s.append(...options.map(([value, label]) => { const o = el('option', null, label); o.value = value; return o; }));
  s.addEventListener('change', () => run(true));
  return s;
};
const field = (name, type) => {
  const i = el('input');
  i.type = type;
  i.dataset.ib = name;
  i.setAttribute('aria-label', t(name));
  i.addEventListener('change', () => run(true));
  return i;
};

const status = select('search-status', [['', t('all-statuses')], ...['open', 'pending', 'resolved', 'snoozed'].map((s) => [s, t(s)])]);
const kind = select('search-kind', [['', t('search-all-kinds')], ['dm', t('search-kind-dm')], ['comment', t('search-kind-comment')], ['group', t('search-kind-group')]]);
const channel = select('search-channel', [['', t('all-channels')]]);
const label = field('search-label', 'search');
label.placeholder = t('filter-label');
label.maxLength = 50;
label.setAttribute('list', 'known-labels');
const since = field('search-since', 'date');
const until = field('search-until', 'date');
const dated = (input_, name) => { const l = el('label', null, t(name)); l.append(input_); return l; };
const bar = el('div', 'search-filters');
bar.dataset.ib = 'search-filters';
bar.append(channel, status, kind, label, dated(since, 'search-since'), dated(until, 'search-until'));
const list = el('div', 'search-list');
list.dataset.ib = 'search-list';
list.setAttribute('aria-live', 'polite');
const more = el('button', 'ghost search-more', t('search-more'));
more.type = 'button';
more.dataset.ib = 'search-more';
more.addEventListener('click', () => run(false));

function fillChannels() { // the workspace's channels, loaded after sign-in
  const keep = channel.value;
  channel.replaceChildren(channel.options[0], ...[...channels.values()].map((c) => {
    const o = el('option', null, `${c.name} (${KINDS[c.kind] || c.kind})`);
    o.value = c.id;
    return o;
  }));
  channel.value = keep;
}

const day = (value, after) => { // a local day's start (or the next day's) as a time with a zone
  const d = new Date(`${value}T00:00`);
  if (after) d.setDate(d.getDate() + 1);
  return d.toISOString();
};

function address(cursor) {
  const p = new URLSearchParams({ q: query });
  if (channel.value) p.set('channel_id', channel.value);
  if (status.value) p.set('status', status.value);
  if (kind.value) p.set('kind', kind.value);
  if (label.value.trim()) p.set('label', label.value.trim());
  if (since.value) p.set('since', day(since.value, false));
  if (until.value) p.set('until', day(until.value, true));
  if (cursor) p.set('cursor', cursor);
  return `/api/search?${p}`;
}

input.addEventListener('input', () => {
  clearTimeout(timer);
  if (input.value.trim().length < 2) { results.hidden = true; return; }
  timer = setTimeout(() => run(true), 250);
});
$('search-form').addEventListener('submit', (e) => { e.preventDefault(); if (input.value.trim().length >= 2) run(true); });

async function run(fresh) {
  if (fresh) { query = input.value.trim(); nextCursor = null; }
  if (query.length < 2) return;
  const mine = ++seq;
  const r = await api('GET', address(fresh ? null : nextCursor)).catch(() => ({ ok: false }));
  if (mine !== seq || !r.ok) return;
  if (fresh) {
    fillChannels();
    list.replaceChildren(...contactsOf(r.data.contacts));
    if (r.data.messages.length) list.append(el('h2', null, t('search-messages')));
  }
  list.append(...r.data.messages.map(messageEntry));
  if (!list.childElementCount) list.append(el('p', 'muted', t('search-none')));
  nextCursor = r.data.next_cursor;
  more.hidden = !nextCursor;
  results.replaceChildren(bar, list, more);
  results.hidden = false;
}

function entry(lines, sub, onClick) {
  const b = el('button', 'result');
  b.type = 'button';
  b.dataset.ib = 'search-result';
  const main = el('span');
  main.append(...lines);
  b.append(main, el('small', 'muted', sub));
  b.addEventListener('click', () => { results.hidden = true; onClick(); });
  return b;
}

function contactsOf(contacts) {
  if (!contacts.length) return [];
  return [el('h2', null, t('search-contacts')), ...contacts.map((c) => entry(
    highlighted(title({ contact: c, contact_id: c.id }), query), c.username || '', () => showContact(c.id, true)))];
}

function messageEntry(m) { // its text, or the caption or file name that matched
  const said = [m.text, ...(m.attachments || []).flatMap((a) => [a.caption, a.name])].filter(Boolean);
  const shown = said.find((s) => highlighted(s, query).some((n) => n.nodeName === 'MARK')) || said[0] || '';
  const where = channels.get(m.channel_id);
  return entry(highlighted(shown, query), [stamp(m.sent_at), where && where.name].filter(Boolean).join(' · '), () => openById(m.conversation_id));
}
