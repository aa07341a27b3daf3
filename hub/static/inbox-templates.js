/* WhatsApp templates in the composer: when the 24-hour window of a WhatsApp conversation is
 * closed, only an approved template reaches the customer. The agent picks one, fills its
 * variables (a media header by link or by a file), reads a live preview of what the customer
 * will read, and sends it; the message arrives by the socket like any other (matched by its
 * client_id), and a refusal, the hub's or WhatsApp's, is said in words. */
import { api, el, errorText, upload, uid } from './common.js';
import { fill, messageEl } from './render.js';
import { $, messagesEl, pending, state, t } from './inbox-state.js';
import { place } from './inbox-thread.js';

const box = $('templates'), form = $('template-form'), select = $('template-select');
const fieldsEl = $('template-fields'), previewEl = $('template-preview'), errorEl = $('template-error');
let shownFor = null; // the conversation whose templates are loaded
let list = []; // sendable templates, as GET /api/conversations/{id}/templates answers them
let chosen = null;
let inputs = { header: [], body: [], buttons: new Map(), link: null, file: null };

const VAR = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

function say(message) {
  errorEl.textContent = message || '';
  errorEl.hidden = !message;
}

/* Called whenever the window is drawn: shows the offer only when it is what is left. */
export function offerTemplates(c, closed) {
  box.hidden = !closed;
  if (!closed || shownFor !== c.id) { form.hidden = true; shownFor = closed ? c.id : null; say(''); }
}

async function open() {
  const id = shownFor;
  say('');
  const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}/templates`).catch(() => ({ ok: false, status: 0 }));
  if (id !== shownFor) return;
  if (!r.ok) { say(errorText(r, t('templates-unavailable'))); return; }
  list = r.data.items.filter((x) => x.sendable);
  if (!list.length) { say(t('templates-none')); return; }
  select.replaceChildren(...list.map((x, i) => {
    const option = el('option', null, `${x.name} · ${x.language}`);
    option.value = String(i);
    return option;
  }));
  form.hidden = false;
  choose(list[0]);
}

function field(label, attrs) {
  const wrap = el('label', 'template-field');
  const input = el('input');
  Object.assign(input, attrs);
  input.addEventListener('input', preview);
  wrap.append(el('span', null, label), input);
  fieldsEl.append(wrap);
  return input;
}

function choose(template) {
  chosen = template;
  fieldsEl.replaceChildren();
  const p = template.parameters;
  inputs = { header: [], body: [], buttons: new Map(), link: null, file: null };
  const media = ['IMAGE', 'VIDEO', 'DOCUMENT'].includes(p.header_format) ? p.header_format.toLowerCase() : null;
  if (media) {
    inputs.link = field(t('template-header-link', { kind: t(media === 'document' ? 'file' : media) }), { type: 'url', placeholder: 'https://' });
    inputs.link.dataset.ib = 'template-header-link';
    inputs.file = field(t('template-header-file'), { type: 'file', accept: `${media === 'document' ? 'application/pdf' : media + '/*'}` });
    inputs.file.dataset.ib = 'template-header-file';
  }
  inputs.header = p.header.map((v) => field(t('template-variable', { where: t('template-header'), v }), { type: 'text', required: true }));
  inputs.body = p.body.map((v) => field(t('template-variable', { where: t('template-body'), v }), { type: 'text', required: true }));
  p.buttons.filter((b) => b.variables).forEach((b) => {
    inputs.buttons.set(b.index, field(t('template-button', { text: b.text }), { type: 'text', required: true }));
  });
  [...inputs.header, ...inputs.body, ...inputs.buttons.values()].forEach((input) => { input.dataset.ib = 'template-value'; });
  clientIdFor(null);
  preview();
}

const filled = (text, names, values) => (text || '').replace(VAR, (m, name) => {
  const i = names.indexOf(name);
  return i >= 0 && values[i] ? values[i] : m;
});

function rendered() {
  const p = chosen.parameters;
  const parts = [
    p.header_format === 'TEXT' ? filled(chosen.header_text, p.header, inputs.header.map((i) => i.value)) : null,
    filled(chosen.body_text, p.body, inputs.body.map((i) => i.value)),
    chosen.footer_text,
  ];
  return parts.filter(Boolean).join('\n\n');
}

function preview() {
  if (!chosen) return;
  say('');
  clientIdFor(null);
  const file = inputs.file && inputs.file.files[0];
  const media = chosen.parameters.header_format;
  previewEl.replaceChildren();
  if (['IMAGE', 'VIDEO', 'DOCUMENT'].includes(media)) {
    const where = file ? file.name : (inputs.link.value || t('template-header-missing'));
    previewEl.append(el('small', 'muted', `[${t(media === 'DOCUMENT' ? 'file' : media.toLowerCase())}] ${where}`));
  }
  previewEl.append(el('span', null, rendered()));
  chosen.parameters.buttons.forEach((b) => previewEl.append(el('small', 'template-button', b.text)));
}

let retryId = null; // the client_id of exactly these values, kept for a retry
const clientIdFor = (id) => { retryId = id; };

async function send() {
  if (!chosen || !shownFor) return;
  const c = shownFor;
  const values = {
    name: chosen.name, language: chosen.language,
    header: inputs.header.map((i) => i.value.trim()), body: inputs.body.map((i) => i.value.trim()),
    buttons: Object.fromEntries([...inputs.buttons].map(([index, input]) => [String(index), input.value.trim()])),
  };
  const file = inputs.file && inputs.file.files[0];
  if (inputs.link && inputs.link.value.trim() && !file) values.header_link = inputs.link.value.trim();
  const clientId = retryId || uid();
  retryId = clientId;
  const text = rendered();
  const m = {
    id: '', conversation_id: c, direction: 'out', text, note: false, sent_at: new Date().toISOString(), status: 'pending',
    sender: { type: 'agent', id: state.me.user_id, name: state.me.name }, kind: 'dm',
    attachments: file ? [{ type: 'image', name: file.name, size: file.size, state: 'uploading' }] : [],
  };
  const node = messageEl(m, t);
  node.classList.add('sending');
  node.dataset.clientId = clientId;
  place(node);
  messagesEl.scrollTop = messagesEl.scrollHeight;
  pending.set(clientId, { node, m, conversationId: c, tries: 0 });
  const path = `/api/conversations/${encodeURIComponent(c)}/templates`;
  let r;
  if (file) {
    const data = new FormData();
    data.append('client_id', clientId);
    data.append('template', JSON.stringify(values));
    data.append('attachments', file, file.name);
    r = await upload(path, data).catch(() => ({ ok: false, status: 0 }));
  } else {
    r = await api('POST', path, { client_id: clientId, ...values }).catch(() => ({ ok: false, status: 0 }));
  }
  if (r.ok) { form.hidden = true; retryId = null; return; }
  const reason = r.status ? errorText(r, t('status-failed')) : t('unreachable');
  if (pending.has(clientId)) {
    pending.delete(clientId);
    node.classList.remove('sending');
    node.classList.add('failed');
    fill(node, Object.assign(m, { status: 'failed', error: { message: reason } }), t);
  }
  say(reason);
}

$('templates-open').addEventListener('click', open);
$('template-cancel').addEventListener('click', () => { form.hidden = true; say(''); });
$('template-send').addEventListener('click', send);
select.addEventListener('change', () => choose(list[Number(select.value)]));
