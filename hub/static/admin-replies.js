/* The Saved replies tab: the workspace's canned responses, which every member inserts in the
 * composer with /shortcut (and the admin's own). Add, edit, delete. Placeholders such as
 * {{contact.first_name | there}} are checked by the server, whose refusal
 * (`unknown_placeholder`) is shown as it comes; the inbox's own dialog stays for agents. */
import { api, el, ib, stamp } from './common.js';
import { button, cell, field, heading, input, line, say, table } from './admin-kit.js';

const PLACEHOLDERS = ['{{contact.name}}', '{{contact.first_name}}', '{{agent.name}}', '{{agent.first_name}}'];

export function repliesPanel({ t, problem, confirmDialog }) {
  const panel = ib('panel-replies');
  const error = line('error', 'replies-error', 'alert');
  const saved = line('ok', 'replies-saved', 'status');
  const shortcut = input({ maxlength: '41', autocomplete: 'off', spellcheck: 'false', required: '', pattern: '/?[a-z0-9][a-z0-9_\\-]{0,39}', 'aria-describedby': 'help-reply-shortcut' });
  const text = el('textarea');
  text.rows = 4;
  text.maxLength = 5000;
  text.required = true;
  text.setAttribute('aria-describedby', 'help-reply-text');
  const personal = input({ type: 'checkbox' });
  personal.dataset.ib = 'reply-personal';
  const personalRow = el('label', 'check');
  personalRow.dataset.ib = 'reply-personal-row';
  personalRow.append(personal, el('span', null, t('reply-personal')));
  const formError = line('error', 'reply-error', 'alert');
  const title = heading(3, t('reply-new'), 'reply-form-title');
  const submit = button(t('reply-add'), 'reply-submit', 'primary', 'submit');
  const cancel = button(t('cancel'), 'reply-cancel');
  cancel.hidden = true;
  const actions = el('div', 'actions');
  actions.append(submit, cancel);
  const help = (id, words) => { const p = el('p', 'help', words); p.id = id; return p; };
  const form = el('form', 'box');
  form.noValidate = true;
  form.dataset.ib = 'reply-form';
  form.setAttribute('aria-labelledby', 'reply-form-title');
  form.append(
    title,
    field(t('reply-shortcut'), shortcut, 'reply-shortcut'),
    help('help-reply-shortcut', t('help-reply-shortcut')),
    field(t('reply-text'), text, 'reply-text'),
    help('help-reply-text', t('help-reply-text', { names: PLACEHOLDERS.join(', ') })),
    personalRow, formError, actions,
  );

  const [list, body] = table([t('reply-shortcut'), t('reply-text'), t('reply-owner'), t('reply-updated'), { text: t('actions'), sr: true }], 'replies');
  const empty = el('p', 'muted', t('replies-none'));
  empty.dataset.ib = 'replies-empty';
  const head = el('div', 'head');
  head.append(heading(2, t('replies')));
  panel.replaceChildren(head, el('p', 'help', t('help-replies')), error, saved, form, list, empty);

  let editing = null; // the reply being edited, or null for a new one

  function edit(reply) {
    editing = reply;
    shortcut.value = reply ? reply.shortcut : '';
    text.value = reply ? reply.text : '';
    personal.checked = false;
    personalRow.hidden = Boolean(reply);
    title.textContent = reply ? t('reply-edit-title', { shortcut: reply.shortcut }) : t('reply-new');
    submit.textContent = reply ? t('save') : t('reply-add');
    cancel.hidden = !reply;
    say(formError, '');
    if (reply) shortcut.focus();
  }

  function replyRow(reply) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'reply', id: reply.id, shortcut: reply.shortcut });
    const words = cell(reply.text, t('reply-text'));
    words.className = 'reply-text';
    const change = button(t('edit'), 'reply-edit');
    change.setAttribute('aria-label', `${t('edit')}: /${reply.shortcut}`);
    change.addEventListener('click', () => edit(reply));
    const remove = button(t('delete'), 'reply-delete', 'ghost danger-ghost');
    remove.setAttribute('aria-label', `${t('delete')}: /${reply.shortcut}`);
    remove.addEventListener('click', () => removeReply(reply));
    const buttons = el('td', 'row-actions');
    buttons.append(change, remove);
    tr.append(
      cell(`/${reply.shortcut}`, t('reply-shortcut')), words,
      cell(t(reply.personal ? 'reply-mine' : 'reply-shared'), t('reply-owner')),
      cell(stamp(reply.updated_at), t('reply-updated')), buttons,
    );
    return tr;
  }

  async function load() {
    const r = await api('GET', '/api/canned-responses');
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    say(error, '');
    body.replaceChildren(...r.data.items.map(replyRow));
    empty.hidden = r.data.items.length > 0;
  }

  async function removeReply(reply) {
    const ok = await confirmDialog(t('reply-delete-title', { shortcut: reply.shortcut }), t('reply-delete-text'), t('delete'));
    if (!ok) return;
    const r = await api('DELETE', `/api/canned-responses/${reply.id}`);
    say(error, r.ok ? '' : problem(r, 'could-not-change'));
    if (editing && editing.id === reply.id) edit(null);
    await load();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(saved, '');
    const payload = { shortcut: shortcut.value.trim().replace(/^\//, '').toLowerCase(), text: text.value.trim() };
    if (!payload.shortcut) { shortcut.focus(); return say(formError, t('reply-need-shortcut')); }
    if (!payload.text) { text.focus(); return say(formError, t('reply-need-text')); }
    const r = editing
      ? await api('PATCH', `/api/canned-responses/${editing.id}`, payload)
      : await api('POST', '/api/canned-responses', { ...payload, personal: personal.checked });
    if (!r.ok) {
      const code = r.data && r.data.error && r.data.error.code;
      (code === 'unknown_placeholder' ? text : shortcut).focus();
      return say(formError, problem(r, 'could-not-save'));
    }
    say(saved, t('reply-saved', { shortcut: r.data.shortcut }));
    edit(null);
    await load();
  });
  cancel.addEventListener('click', () => { edit(null); shortcut.focus(); });

  return { load };
}
