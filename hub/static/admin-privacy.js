/* The Privacy tab: find a contact, export everything held about them (a JSON file, the
 * subject-access export of GET /api/contacts/{id}/export) or erase them (POST /api/deletions),
 * and follow every deletion request of the workspace, the admins' and Meta's, with what it has
 * erased so far. The list refreshes itself while a request is still running. */
import { api, el, ib, stamp } from './common.js';
import { button, cell, field, heading, input, line, say, table } from './admin-kit.js';

const RUNNING = ['received', 'in_progress'];
const REFRESH_MS = 2000;

export function privacyPanel({ t, problem, confirmDialog }) {
  const panel = ib('panel-privacy');
  const head = el('div', 'head');
  head.append(heading(2, t('privacy')));

  // Finding a contact
  const query = input({ type: 'search', maxlength: '200', autocomplete: 'off', 'aria-describedby': 'help-privacy-find' });
  const finder = el('form', 'box');
  finder.noValidate = true;
  finder.setAttribute('role', 'search');
  finder.dataset.ib = 'privacy-find';
  finder.setAttribute('aria-labelledby', 'privacy-find-title');
  const findHelp = el('p', 'help', t('help-privacy-find'));
  findHelp.id = 'help-privacy-find';
  const findError = line('error', 'privacy-find-error', 'alert');
  const findRow = el('div', 'actions');
  findRow.append(button(t('privacy-search'), 'privacy-search', 'primary', 'submit'));
  const [found, foundBody] = table([t('privacy-contact'), t('email'), t('privacy-first-seen'), { text: t('actions'), sr: true }], 'privacy-contacts');
  found.hidden = true;
  const none = el('p', 'muted', t('privacy-no-contacts'));
  none.hidden = true;
  finder.append(heading(3, t('privacy-find'), 'privacy-find-title'), field(t('privacy-query'), query, 'privacy-query'), findHelp, findRow, findError, found, none);

  // Exports made from this page
  const exportsBox = el('section', 'box');
  exportsBox.dataset.ib = 'exports';
  exportsBox.setAttribute('aria-labelledby', 'exports-title');
  const [exportsTable, exportsBody] = table([t('privacy-contact'), t('export-asked'), t('export-state'), { text: t('actions'), sr: true }], 'export-rows');
  const exportsNone = el('p', 'muted', t('exports-none'));
  exportsNone.dataset.ib = 'exports-none';
  exportsBox.append(heading(3, t('exports'), 'exports-title'), el('p', 'help', t('help-exports')), exportsTable, exportsNone);

  // Deletion requests
  const deletionsBox = el('section', 'box');
  deletionsBox.dataset.ib = 'deletions';
  deletionsBox.setAttribute('aria-labelledby', 'deletions-title');
  const deletionsError = line('error', 'deletions-error', 'alert');
  const [deletionsTable, deletionsBody] = table([t('deletion-filed'), t('deletion-source'), t('deletion-code'), t('deletion-state'), t('deletion-progress')], 'deletion-rows');
  const deletionsNone = el('p', 'muted', t('deletions-none'));
  deletionsNone.dataset.ib = 'deletions-none';
  const more = button(t('load-more'), 'deletions-more');
  more.hidden = true;
  const refresh = button(t('refresh'), 'deletions-refresh');
  const deletionsHead = el('div', 'head');
  deletionsHead.append(heading(3, t('deletions'), 'deletions-title'), refresh);
  deletionsBox.append(deletionsHead, el('p', 'help', t('help-deletions')), deletionsError, deletionsTable, deletionsNone, more);

  // By a platform's id: a person the hub may not have stored yet (still on the stream), or one
  // who gave their Instagram, Messenger, WhatsApp or Telegram id.
  const channel = el('select');
  const platformId = input({ maxlength: '200', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'help-deletion-platform' });
  const byId = el('form', 'stack');
  byId.noValidate = true;
  byId.dataset.ib = 'deletion-by-id';
  byId.setAttribute('aria-labelledby', 'deletion-by-id-title');
  const byIdError = line('error', 'deletion-by-id-error', 'alert');
  const byIdHelp = el('p', 'help', t('help-deletion-platform'));
  byIdHelp.id = 'help-deletion-platform';
  const byIdGrid = el('div', 'grid');
  byIdGrid.append(field(t('deletion-channel'), channel, 'deletion-channel'), field(t('deletion-platform-id'), platformId, 'deletion-platform-id'));
  const byIdActions = el('div', 'actions');
  byIdActions.append(button(t('erase-data'), 'deletion-by-id-submit', 'danger', 'submit'));
  byId.append(heading(4, t('deletion-by-id'), 'deletion-by-id-title'), byIdGrid, byIdHelp, byIdError, byIdActions);
  deletionsBox.insertBefore(byId, deletionsTable);

  const notice = line('notice', 'privacy-notice', 'status');
  panel.replaceChildren(head, el('p', 'help', t('help-privacy')), notice, finder, exportsBox, deletionsBox);

  let cursor = null, timer = null, exportsMade = 0, running = new Set();
  const who = (c) => c.name || c.username || t('privacy-unnamed');

  function contactRow(c) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'privacy-contact', id: c.id });
    const actions = el('td', 'row-actions');
    const exporting = button(t('export-data'), 'privacy-export');
    exporting.setAttribute('aria-label', `${t('export-data')}: ${who(c)}`);
    exporting.addEventListener('click', () => exportContact(c));
    const erase = button(t('erase-data'), 'privacy-erase', 'ghost danger-ghost');
    erase.setAttribute('aria-label', `${t('erase-data')}: ${who(c)}`);
    erase.addEventListener('click', () => eraseContact(c));
    actions.append(exporting, erase);
    tr.append(cell(who(c), t('privacy-contact')), cell(c.email || '—', t('email')), cell(stamp(c.created_at), t('privacy-first-seen')), actions);
    return tr;
  }

  async function find() {
    const params = new URLSearchParams({ limit: '20' });
    if (query.value.trim()) params.set('q', query.value.trim());
    const r = await api('GET', `/api/contacts?${params}`);
    if (!r.ok) return say(findError, problem(r, 'could-not-load'));
    say(findError, '');
    foundBody.replaceChildren(...r.data.items.map(contactRow));
    found.hidden = r.data.items.length === 0;
    none.hidden = r.data.items.length > 0;
  }

  /* The export is made while the admin waits: its row says so, then offers the file. */
  async function exportContact(c) {
    exportsMade += 1;
    exportsNone.hidden = true;
    const tr = el('tr');
    tr.dataset.ib = 'export-row';
    const state = cell(t('export-preparing'), t('export-state'));
    state.dataset.ib = 'export-state';
    const actions = el('td', 'row-actions');
    tr.append(cell(who(c), t('privacy-contact')), cell(stamp(new Date().toISOString()), t('export-asked')), state, actions);
    exportsBody.prepend(tr);
    tr.dataset.state = 'preparing';
    let response;
    try {
      response = await fetch(`/api/contacts/${c.id}/export`, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    } catch (e) {
      response = null;
    }
    if (!response || !response.ok) {
      let data = null;
      try { data = response && await response.json(); } catch (e) { /* no body */ }
      tr.dataset.state = 'failed';
      state.textContent = t('export-failed', { why: problem({ data, status: response ? response.status : 0 }, 'could-not-load') });
      return;
    }
    const blob = await response.blob();
    const link = el('a', 'ghost button', t('export-download'));
    link.dataset.ib = 'export-download';
    link.href = URL.createObjectURL(blob);
    link.download = `contact-${c.id}.json`;
    link.setAttribute('aria-label', `${t('export-download')}: ${who(c)}`);
    actions.append(link);
    tr.dataset.state = 'ready';
    state.textContent = t('export-ready', { size: Math.max(1, Math.round(blob.size / 1024)) });
    link.focus();
  }

  async function eraseContact(c) {
    const ok = await confirmDialog(t('erase-contact-title', { name: who(c) }), t('erase-contact-text'), t('erase-data'));
    if (!ok) return;
    const r = await api('POST', '/api/deletions', { contact_id: c.id });
    if (!r.ok) return say(findError, problem(r, 'could-not-change'));
    say(notice, t('deletion-started', { code: r.data.confirmation_code }));
    running.add(r.data.id); // so its end runs the search again
    await deletions(true);
  }

  function progress(d) {
    const counts = d.counts;
    return t('deletion-counts', { contacts: counts.contacts, conversations: counts.conversations, messages: counts.messages, files: counts.files });
  }

  function deletionRow(d) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'deletion', id: d.id, status: d.status, code: d.confirmation_code });
    const status = cell(t(`deletion-${d.status}`), t('deletion-state'));
    status.dataset.ib = 'deletion-status';
    if (d.completed_at) status.title = stamp(d.completed_at);
    const counts = cell(progress(d), t('deletion-progress'));
    counts.dataset.ib = 'deletion-progress';
    const code = el('td');
    code.dataset.label = t('deletion-code');
    code.append(el('code', null, d.confirmation_code));
    tr.append(cell(stamp(d.created_at), t('deletion-filed')), cell(t(`deletion-by-${d.source}`), t('deletion-source')), code, status, counts);
    return tr;
  }

  async function deletions(reset) {
    const params = new URLSearchParams({ limit: '50' });
    if (!reset && cursor) params.set('cursor', cursor);
    const r = await api('GET', `/api/deletions?${params}`);
    if (!r.ok) return say(deletionsError, problem(r, 'could-not-load'));
    say(deletionsError, '');
    const rows = r.data.items.map(deletionRow);
    if (reset) deletionsBody.replaceChildren(...rows);
    else deletionsBody.append(...rows);
    cursor = r.data.next_cursor;
    more.hidden = !cursor;
    deletionsNone.hidden = deletionsBody.children.length > 0;
    clearTimeout(timer);
    if (!reset) return;
    const still = new Set(r.data.items.filter((d) => RUNNING.includes(d.status)).map((d) => d.id));
    if ([...running].some((id) => !still.has(id))) find(); // one ended: its contact is gone
    running = still;
    if (still.size) timer = setTimeout(() => { if (!panel.hidden) deletions(true); }, REFRESH_MS);
  }

  async function channels() {
    const r = await api('GET', '/api/channels');
    if (!r.ok) return;
    const chosen = channel.value;
    channel.replaceChildren(...r.data.items.map((c) => {
      const option = el('option', null, `${c.name} (${c.kind})`);
      option.value = c.id;
      return option;
    }));
    if (r.data.items.some((c) => c.id === chosen)) channel.value = chosen;
  }

  byId.addEventListener('submit', async (e) => {
    e.preventDefault();
    const wanted = platformId.value.trim();
    if (!channel.value) return say(byIdError, t('deletion-need-channel'));
    if (!wanted) { platformId.focus(); return say(byIdError, t('deletion-need-platform-id')); }
    const ok = await confirmDialog(t('erase-platform-title', { id: wanted }), t('erase-contact-text'), t('erase-data'));
    if (!ok) return;
    const r = await api('POST', '/api/deletions', { channel_id: channel.value, platform_user_id: wanted });
    if (!r.ok) return say(byIdError, problem(r, 'could-not-change'));
    say(byIdError, '');
    byId.reset();
    say(notice, t('deletion-started', { code: r.data.confirmation_code }));
    running.add(r.data.id);
    await deletions(true);
  });

  finder.addEventListener('submit', (e) => { e.preventDefault(); find(); });
  more.addEventListener('click', () => deletions(false));
  refresh.addEventListener('click', () => deletions(true));

  async function load() {
    exportsNone.hidden = exportsMade > 0;
    await Promise.all([find(), deletions(true), channels()]);
  }

  return { load };
}
