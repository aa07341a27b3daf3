/* Custom attributes in the inbox: the values of the open conversation (the thread's side) and
 * of the contact (the contact panel), edited in place, typed by their definition; live from
 * other agents (`conversation.updated` / `contact.updated` with `attributes`); and the list's
 * attribute filter (`attr.<key>=value` on GET /api/conversations). Each part renders into its
 * own section ([data-ib=conversation-attributes], [data-ib=contact-attributes],
 * [data-ib=attribute-filter]); the rest of the inbox only calls the functions exported here.
 * Values are put on the page as text; a link only as an http(s) <a> with noopener noreferrer. */
import { api, el, ib, translator } from './common.js';
import strings from './attribute-strings.js';
import { filter } from './inbox-state.js';
import { loadConversations, renderList } from './inbox-list.js';

const t = translator(strings);
let definitions = [];
// What each section shows: its subject, the id, and the values as the server last said.
const shown = {
  conversation: { id: null, values: {} },
  contact: { id: null, values: {} },
};
const ERRORS = { number: 'invalid-number', date: 'invalid-date', link: 'invalid-link' };

export function isWebLink(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch (e) {
    return false;
  }
}

/* A safe link to `href` (only http and https), or null. */
export function safeLink(href) {
  if (!isWebLink(href)) return null;
  const a = el('a', null, href);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

/* The definitions, read once after sign-in (and again when asked). */
export async function loadAttributes() {
  const r = await api('GET', '/api/attributes').catch(() => ({ ok: false }));
  if (!r.ok) return;
  definitions = r.data.items;
  renderFilter();
  ['conversation', 'contact'].forEach((subject) => { if (shown[subject].id) render(subject); });
}

export function showConversationAttributes(id) { show('conversation', id); }
export function showContactAttributes(id) { show('contact', id); }

async function show(subject, id) {
  shown[subject] = { id, values: {} };
  render(subject);
  if (!id) return;
  const path = subject === 'contact' ? 'contacts' : 'conversations';
  const r = await api('GET', `/api/${path}/${encodeURIComponent(id)}/attributes`).catch(() => ({ ok: false }));
  if (!r.ok || shown[subject].id !== id) return;
  shown[subject].values = r.data.values;
  render(subject);
}

/* Another agent's change (or ours, echoed): merged into what is shown. */
export function attributesEvent(name, data) {
  if (!data || !data.attributes) return;
  const subject = name === 'contact.updated' ? 'contact' : name === 'conversation.updated' ? 'conversation' : null;
  if (!subject) return;
  const id = subject === 'contact' ? data.contact_id : data.conversation_id;
  if (shown[subject].id === id) {
    const values = { ...shown[subject].values };
    Object.entries(data.attributes).forEach(([key, value]) => { if (value === null) delete values[key]; else values[key] = value; });
    shown[subject].values = values;
    render(subject);
  }
  if (filter.attr) loadConversations().catch(() => {});
}

function control(definition, value) {
  let node;
  if (definition.type === 'list') {
    node = el('select');
    const none = el('option', null, t('attribute-choose'));
    none.value = '';
    node.append(none, ...definition.options.map((o) => { const x = el('option', null, o); x.value = o; return x; }));
    node.value = value == null ? '' : String(value);
  } else {
    node = el('input');
    const types = { number: 'number', date: 'date', link: 'url', text: 'text' };
    node.type = types[definition.type];
    if (definition.type === 'number') node.step = 'any';
    node.maxLength = 500;
    node.autocomplete = 'off';
    node.value = value == null ? '' : String(value);
  }
  node.dataset.ib = 'attribute-input';
  return node;
}

/* What the agent has typed or chosen and not saved, in the form shown for `id`: a render
 * (the stored values arriving, another agent's change) keeps it, and the focus with it. */
function unsaved(section, id) {
  const edits = new Map();
  if (section.dataset.for !== String(id)) return { edits, focused: null };
  section.querySelectorAll('[data-ib=attribute-row]').forEach((row) => {
    const input = row.querySelector('[data-ib=attribute-input]');
    if (input && input.value !== input.dataset.was) edits.set(row.dataset.key, input.value);
  });
  const active = section.contains(document.activeElement) && document.activeElement.closest('[data-ib=attribute-row]');
  return { edits, focused: active ? active.dataset.key : null };
}

function render(subject) {
  const section = ib(`${subject}-attributes`);
  if (!section) return;
  const { id, values } = shown[subject];
  const { edits, focused } = unsaved(section, id);
  section.dataset.for = String(id);
  const mine = definitions.filter((d) => d.applies_to === subject);
  section.hidden = !id;
  section.dataset.subject = subject;
  const title = el(subject === 'contact' ? 'h4' : 'strong', null, t(`${subject}-attributes`));
  title.id = `${subject}-attributes-title`;
  section.setAttribute('aria-labelledby', title.id);
  if (!mine.length) {
    section.replaceChildren(title, el('p', 'muted', t('attributes-none')));
    return;
  }
  const form = el('form', 'attributes-form');
  form.noValidate = true;
  const inputs = new Map();
  mine.forEach((d) => {
    const row = el('div', 'attribute');
    Object.assign(row.dataset, { ib: 'attribute-row', key: d.key });
    const label = el('label');
    const input = control(d, values[d.key]);
    input.dataset.was = input.value;
    if (edits.has(d.key)) input.value = edits.get(d.key);
    inputs.set(d.key, input);
    label.append(el('span', null, d.label), input);
    row.append(label);
    const link = d.type === 'link' && values[d.key] != null ? safeLink(String(values[d.key])) : null;
    if (link) { link.dataset.ib = 'attribute-link'; row.append(link); }
    form.append(row);
  });
  const status = el('p', 'muted attributes-status');
  status.dataset.ib = `${subject}-attributes-status`;
  status.setAttribute('role', 'status');
  const save = el('button', 'ghost', t('attribute-save'));
  save.type = 'submit';
  save.dataset.ib = `${subject}-attributes-save`;
  form.append(save, status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const changed = {};
    for (const d of mine) {
      const input = inputs.get(d.key);
      const raw = input.value.trim();
      const before = values[d.key] == null ? '' : String(values[d.key]);
      if (raw === before) continue;
      if (raw && d.type === 'link' && !isWebLink(raw)) { status.textContent = t('invalid-link'); input.focus(); return; }
      if (raw && d.type === 'number' && !Number.isFinite(Number(raw))) { status.textContent = t('invalid-number'); input.focus(); return; }
      changed[d.key] = raw === '' ? null : d.type === 'number' ? Number(raw) : raw;
    }
    if (!Object.keys(changed).length) return;
    save.disabled = true;
    const path = subject === 'contact' ? 'contacts' : 'conversations';
    const r = await api('PATCH', `/api/${path}/${encodeURIComponent(id)}/attributes`, { values: changed }).catch(() => ({ ok: false }));
    save.disabled = false;
    if (!r.ok) {
      const code = r.data && r.data.error && r.data.error.code;
      const key = Object.keys(changed)[0];
      const kind = (mine.find((d) => d.key === key) || {}).type;
      status.textContent = t(code === 'invalid_attribute_value' && ERRORS[kind] ? ERRORS[kind] : 'invalid-value');
      return;
    }
    if (shown[subject].id !== id) return;
    shown[subject].values = r.data.values;
    section.dataset.for = ''; // saved: the form shows the stored values as they came back
    render(subject);
    const again = ib(`${subject}-attributes-status`);
    if (again) again.textContent = t('attribute-saved-inbox');
  });
  section.replaceChildren(title, form);
  if (focused && inputs.has(focused)) inputs.get(focused).focus();
}

// The list's filter: one attribute and a value at a time.

function renderFilter() {
  const box = ib('attribute-filter');
  if (!box) return;
  box.hidden = !definitions.length;
  if (!definitions.length) { box.replaceChildren(); return; }
  const pick = el('select');
  pick.dataset.ib = 'attribute-filter-key';
  pick.setAttribute('aria-label', t('filter-attribute'));
  const any = el('option', null, t('filter-attribute-any'));
  any.value = '';
  pick.append(any, ...definitions.map((d) => { const o = el('option', null, d.label); o.value = d.key; return o; }));
  const value = el('input');
  Object.assign(value, { type: 'search', maxLength: 500, autocomplete: 'off', placeholder: t('filter-attribute-value') });
  value.dataset.ib = 'attribute-filter-value';
  value.setAttribute('aria-label', t('filter-attribute-value'));
  if (filter.attr) { pick.value = filter.attr.key; value.value = filter.attr.value; }
  const apply = () => {
    const key = pick.value, wanted = value.value.trim();
    filter.attr = key && wanted ? { key, value: wanted, ids: null } : null;
    box.dataset.active = String(Boolean(filter.attr));
    renderList();
    loadConversations().catch(() => {});
  };
  pick.addEventListener('change', () => { if (!pick.value || value.value.trim() || filter.attr) apply(); });
  value.addEventListener('change', apply);
  box.replaceChildren(pick, value);
}
