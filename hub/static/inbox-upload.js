/* Files in the composer: picked with the button, dropped on the conversation or pasted into the
 * reply box; shown before sending (a thumbnail for a picture, the name and size otherwise), each
 * with a button to take it out. Sending posts them with the text as multipart/form-data to the
 * REST API; the message then arrives by the socket like any other (matched by client_id, which
 * also makes a retry of the same files idempotent). What the hub refuses is said in words and
 * the files go back to the composer. */
import { el, upload, uid } from './common.js';
import { size } from './attachments.js';
import { fill, messageEl } from './render.js';
import { $, messagesEl, pane, pending, reply, state, t } from './inbox-state.js';
import { place } from './inbox-thread.js';

const MAX_FILES = 10; // what the hub takes in one message
const tray = $('uploads'), picker = $('file-input'), errorEl = $('upload-error');
let files = []; // {file, preview}
let trayId = null; // the client_id of exactly these files, kept for a retry

const kindOf = (file) => (/^(image|audio|video)\//.exec(file.type || '') || [null, 'file'])[1];

function say(message) {
  errorEl.textContent = message || '';
  errorEl.hidden = !message;
}

function render() {
  tray.replaceChildren(...files.map((f, i) => {
    const item = el('li', 'upload');
    item.dataset.ib = 'upload';
    if (f.preview) {
      const img = el('img');
      img.src = f.preview;
      img.alt = f.file.name;
      item.append(img);
    }
    item.append(el('span', 'upload-name', f.file.name || t(kindOf(f.file))), el('small', 'muted', size(f.file.size)));
    const remove = el('button', 'ghost small', '×');
    remove.type = 'button';
    remove.dataset.ib = 'upload-remove';
    remove.setAttribute('aria-label', t('upload-remove', { name: f.file.name }));
    remove.addEventListener('click', () => {
      if (f.preview) URL.revokeObjectURL(f.preview);
      files.splice(i, 1);
      trayId = null;
      say('');
      render();
    });
    item.append(remove);
    return item;
  }));
  tray.hidden = !files.length;
}

export function addFiles(list) {
  const incoming = [...(list || [])].filter((f) => f && f.size >= 0);
  if (!incoming.length) return false;
  if (pane.dataset.mode === 'note') { say(t('upload-no-notes')); return true; }
  const room = MAX_FILES - files.length;
  if (incoming.length > room) say(t('upload-too-many', { n: MAX_FILES })); else say('');
  incoming.slice(0, Math.max(0, room)).forEach((file) => {
    files.push({ file, preview: kindOf(file) === 'image' ? URL.createObjectURL(file) : null });
  });
  trayId = null;
  render();
  return true;
}

export const hasFiles = () => files.length > 0;
export const noFilesInNotes = () => say(t('upload-no-notes'));

export function forgetUploads() {
  files.forEach((f) => f.preview && URL.revokeObjectURL(f.preview));
  files = [];
  trayId = null;
  say('');
  render();
}

function why(r) {
  const code = r.data && r.data.error && r.data.error.code;
  const message = r.data && r.data.error && r.data.error.message;
  if (!r.status) return t('unreachable');
  if (code === 'media_refused_by_channel') return t('upload-refused', { why: message || '' });
  const key = {
    media_too_large: 'upload-too-big', too_big: 'upload-too-big', unsupported_media_type: 'upload-unsupported',
    upload_incomplete: 'upload-incomplete', bad_upload: 'upload-incomplete', rate_limited: 'upload-rate-limited',
  }[code];
  return key ? t(key) : message || t('upload-failed');
}

/* Sends the files in the composer with `text` to conversation `c`. */
export async function sendFiles(c, text, privateReply) {
  const sending = files;
  const clientId = trayId || uid();
  files = [];
  trayId = null;
  say('');
  render();
  const m = {
    id: '', conversation_id: c.id, direction: 'out', text, note: false, private_reply: privateReply, sent_at: new Date().toISOString(),
    status: 'pending', sender: { type: 'agent', id: state.me.user_id, name: state.me.name }, kind: privateReply ? 'dm' : c.kind,
    attachments: sending.map((f) => ({ type: kindOf(f.file), name: f.file.name, size: f.file.size, state: 'uploading' })),
  };
  const node = messageEl(m, t);
  node.classList.add('sending');
  node.dataset.clientId = clientId;
  place(node);
  messagesEl.scrollTop = messagesEl.scrollHeight;
  pending.set(clientId, { node, m, conversationId: c.id, tries: 0 });
  const form = new FormData();
  form.append('client_id', clientId);
  if (text) form.append('text', text);
  if (privateReply) form.append('private_reply', 'true');
  sending.forEach((f) => form.append('attachments', f.file, f.file.name));
  const r = await upload(`/api/conversations/${encodeURIComponent(c.id)}/messages`, form).catch(() => ({ ok: false, status: 0 }));
  if (r.ok) return; // the message arrives by the socket and takes the place of this one
  if (!pending.has(clientId)) return;
  pending.delete(clientId);
  const reason = why(r);
  node.classList.remove('sending');
  node.classList.add('failed');
  fill(node, Object.assign(m, { status: 'failed', error: { message: reason } }), t);
  if (state.openId === c.id && !files.length) { // back in the composer, to fix and send again
    files = sending;
    trayId = clientId;
    if (!reply.value.trim() && text) reply.value = text;
    render();
  }
  say(reason);
}

$('attach').addEventListener('click', () => picker.click());
picker.addEventListener('change', () => { addFiles(picker.files); picker.value = ''; });
reply.addEventListener('paste', (e) => {
  const pasted = [...((e.clipboardData && e.clipboardData.files) || [])];
  if (pasted.length && addFiles(pasted)) e.preventDefault(); // the file, not its name as text
});
const carriesFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
pane.addEventListener('dragover', (e) => {
  if (!carriesFiles(e) || pane.hidden) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
  pane.classList.add('dropping');
});
pane.addEventListener('dragleave', (e) => { if (!pane.contains(e.relatedTarget)) pane.classList.remove('dropping'); });
pane.addEventListener('drop', (e) => {
  pane.classList.remove('dropping');
  if (!carriesFiles(e)) return;
  e.preventDefault();
  addFiles(e.dataTransfer.files);
});
