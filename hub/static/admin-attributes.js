/* The console's Attributes tab: the workspace's custom attributes (GET/POST/PATCH/DELETE
 * /api/attributes). An admin defines one (key, label, type, contacts or conversations, a
 * list's options), renames it or changes a list's options, or deletes it with every value it
 * has. The server checks and audits each change. The tab builds its own content into its
 * empty panel, so the console's page only holds the panel. */
import { api, el, ib, translator } from './common.js';
import strings from './attribute-strings.js';

const TYPES = ['text', 'number', 'date', 'list', 'link'];
const SUBJECTS = ['contact', 'conversation'];
const KEY = /^[a-z][a-z0-9_]{0,39}$/;
const t = translator(strings);

function field(labelKey, control, hook) {
  const label = el('label');
  control.dataset.ib = hook;
  label.append(el('span', null, t(labelKey)), control);
  return label;
}

function choice(values, prefix) {
  const node = el('select');
  node.replaceChildren(...values.map((v) => { const o = el('option', null, t(`${prefix}-${v}`)); o.value = v; return o; }));
  return node;
}

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function attributesPanel({ problem, confirmDialog }) {
  const panel = ib('panel-attributes');
  const head = el('div', 'head');
  const title = el('h2', null, t('attributes-title'));
  const opener = el('button', 'primary', t('new-attribute'));
  Object.assign(opener, { type: 'button' });
  opener.dataset.ib = 'new-attribute';
  opener.setAttribute('aria-expanded', 'false');
  head.append(title, opener);
  const help = el('p', 'help', t('help-attributes'));
  const error = el('p', 'error'); error.setAttribute('role', 'alert'); error.dataset.ib = 'attributes-error'; error.hidden = true;
  const done = el('p', 'ok'); done.setAttribute('role', 'status'); done.dataset.ib = 'attribute-saved'; done.hidden = true;

  const form = el('form', 'box');
  form.dataset.ib = 'attribute-form';
  form.noValidate = true;
  form.hidden = true;
  const formTitle = el('h3');
  formTitle.id = 'attribute-form-title';
  form.setAttribute('aria-labelledby', formTitle.id);
  const key = el('input');
  Object.assign(key, { maxLength: 40, autocomplete: 'off', spellcheck: false });
  const keyHelp = el('p', 'help', t('help-attribute-key'));
  keyHelp.id = 'help-attribute-key';
  key.setAttribute('aria-describedby', keyHelp.id);
  const label = el('input');
  Object.assign(label, { maxLength: 100, autocomplete: 'off' });
  const type = choice(TYPES, 'type'), applies = choice(SUBJECTS, 'applies');
  const options = el('input');
  Object.assign(options, { maxLength: 5000, autocomplete: 'off' });
  const optionsField = field('attribute-options', options, 'attribute-options');
  const grid = el('div', 'grid');
  grid.append(
    field('attribute-key', key, 'attribute-key'), field('attribute-label', label, 'attribute-label'),
    field('attribute-type', type, 'attribute-type'), field('attribute-applies', applies, 'attribute-applies'),
    optionsField,
  );
  const formError = el('p', 'error'); formError.setAttribute('role', 'alert'); formError.dataset.ib = 'attribute-error'; formError.hidden = true;
  const save = el('button', 'primary', t('save-attribute'));
  Object.assign(save, { type: 'submit' });
  save.dataset.ib = 'save-attribute';
  const cancel = el('button', 'ghost', t('cancel'));
  Object.assign(cancel, { type: 'button' });
  cancel.dataset.ib = 'cancel-attribute';
  const actions = el('div', 'actions');
  actions.append(save, cancel);
  form.append(formTitle, grid, keyHelp, formError, actions);

  const table = el('table', 'rows');
  table.dataset.ib = 'attributes-table';
  const headRow = el('tr');
  ['attribute-label', 'attribute-key', 'attribute-type', 'attribute-applies', 'attribute-options-head'].forEach((k) => headRow.append(el('th', null, t(k))));
  const actionsHead = el('th');
  actionsHead.append(el('span', 'sr', `${t('edit')} / ${t('delete')}`));
  headRow.append(actionsHead);
  const thead = el('thead'); thead.append(headRow);
  const body = el('tbody'); body.dataset.ib = 'attributes';
  table.append(thead, body);
  const empty = el('p', 'muted', t('no-attributes'));
  empty.dataset.ib = 'no-attributes';
  empty.hidden = true;
  panel.replaceChildren(head, help, error, done, form, table, empty);

  let items = [], editing = null;

  const showOptions = () => { optionsField.hidden = type.value !== 'list'; };
  type.addEventListener('change', showOptions);

  function open(item) {
    editing = item;
    formTitle.textContent = t(item ? 'edit-attribute' : 'new-attribute');
    key.value = item ? item.key : '';
    label.value = item ? item.label : '';
    type.value = item ? item.type : 'text';
    applies.value = item ? item.applies_to : 'contact';
    options.value = item ? item.options.join(', ') : '';
    [key, type, applies].forEach((c) => { c.disabled = Boolean(item); });
    showOptions();
    say(formError, '');
    form.hidden = false;
    opener.setAttribute('aria-expanded', 'true');
    (item ? label : key).focus();
  }

  function close() {
    form.hidden = true;
    editing = null;
    opener.setAttribute('aria-expanded', 'false');
  }

  opener.addEventListener('click', () => open(null));
  cancel.addEventListener('click', () => { close(); opener.focus(); });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(done, '');
    const chosen = options.value.split(',').map((v) => v.trim()).filter(Boolean);
    const wrong = (!editing && !KEY.test(key.value.trim()) && ['need-key', key])
      || (!label.value.trim() && ['need-label', label])
      || (type.value === 'list' && !chosen.length && ['need-options', options]);
    if (wrong) { say(formError, t(wrong[0])); wrong[1].focus(); return; }
    const body = editing
      ? { label: label.value.trim(), ...(editing.type === 'list' ? { options: chosen } : {}) }
      : { key: key.value.trim(), label: label.value.trim(), type: type.value, applies_to: applies.value, ...(type.value === 'list' ? { options: chosen } : {}) };
    save.disabled = true;
    const r = editing
      ? await api('PATCH', `/api/attributes/${editing.id}`, body)
      : await api('POST', '/api/attributes', body);
    save.disabled = false;
    if (!r.ok) {
      const taken = r.status === 409 && !editing;
      say(formError, taken ? t('key-taken') : problem(r, 'could-not-save'));
      return;
    }
    close();
    say(done, t('attribute-saved', { name: r.data.label }));
    await load();
    opener.focus();
  });

  function button(text, aria, hook, onClick) {
    const b = el('button', 'ghost', text);
    b.type = 'button';
    b.dataset.ib = hook;
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', onClick);
    return b;
  }

  function row(item) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'attribute', key: item.key });
    const name = el('td', null, item.label);
    name.dataset.ib = 'attribute-name';
    const code = el('td'); code.append(el('code', null, item.key));
    const edit = button(t('edit'), t('edit-of', { name: item.label }), 'edit-attribute', () => open(item));
    const remove = button(t('delete'), t('delete-of', { name: item.label }), 'delete-attribute', async () => {
      const sure = await confirmDialog(t('delete-attribute-title', { name: item.label }), t('delete-attribute-text'), t('delete'));
      if (!sure) return;
      const r = await api('DELETE', `/api/attributes/${item.id}`);
      if (!r.ok) { say(error, problem(r, 'could-not-save')); return; }
      say(done, t('attribute-deleted', { name: item.label }));
      await load();
    });
    const tools = el('td', 'actions');
    tools.append(edit, remove);
    tr.append(name, code, el('td', null, t(`type-${item.type}`)), el('td', null, t(`applies-${item.applies_to}`)),
      el('td', null, item.options.join(', ')), tools);
    return tr;
  }

  async function load() {
    say(error, '');
    const r = await api('GET', '/api/attributes');
    if (!r.ok) { say(error, problem(r, 'could-not-load')); return; }
    items = r.data.items;
    body.replaceChildren(...items.map(row));
    table.hidden = !items.length;
    empty.hidden = items.length > 0;
  }

  return { load };
}
