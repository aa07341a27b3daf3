/* The inbox's shared state and small helpers: what every part of the page reads. No imports
 * from the other inbox modules, so it is evaluated first. */
import { ib, translatePage, translator } from './common.js';
import strings from './strings.js';

export const t = translator(strings);
translatePage(t);
export const $ = (name) => ib(name);
// A getter: the channel type follows the page's language (the platforms' names are their own).
export const KINDS = { get webchat() { return t('kind-webchat'); }, instagram: 'Instagram', messenger: 'Messenger', whatsapp: 'WhatsApp', telegram: 'Telegram' };
export const ICONS = { webchat: 'W', instagram: 'IG', messenger: 'M', whatsapp: 'WA', telegram: 'TG' };
export const HOUR = 3600e3;

export const appView = document.getElementById('app');
export const listEl = $('conversations'), placeholder = $('placeholder'), pane = $('pane');
export const messagesEl = $('messages'), typingEl = $('typing'), reply = $('reply');

export const state = {
  me: null, active: false, loaded: false,
  openId: null, thread: new Map(), nextBefore: null, loadSeq: 0, contactRead: null,
  typingOn: null, myPresence: 'online',
};
export const conversations = new Map(); // id -> conversation as REST answers it, kept live
export const rows = new Map(); // conversation id -> <li>
export const channels = new Map(); // id -> channel
export const members = new Map(); // user id -> {name, role}
export const presence = new Map(); // user id -> online | away | offline
export const teams = new Map(); // team id -> {name, assignment, member_ids}
export const recent = new Map(); // conversation id -> messages seen live (bounded)
export const reads = new Map(); // conversation id -> Map(user id -> event id)
export const pending = new Map(); // client_id -> {node, m, conversationId, tries}
export const readSent = new Map(); // conversation id -> last up_to sent
export const filter = { status: 'open', assignee: 'any', team: '', channel: '', label: '', priority: '' };

export const name = (id) => (members.get(id) || {}).name || t('agent');
export const title = (c) => (c.kind === 'group' && c.title) || (c.contact && (c.contact.name || c.contact.username)) || c.name
  || `${t('visitor')} ${String(c.contact_id || c.id).slice(0, 6)}`;
export const eventAfter = (a, b) => { // stream ids "ms-seq"
  const [am, as] = String(a).split('-').map(Number), [bm, bs] = String(b).split('-').map(Number);
  return am > bm || (am === bm && as > bs);
};

const statusEl = $('status');
let shownStatus = ['connecting', ''];
export function setStatus(stateName, text) {
  shownStatus = [stateName, text];
  statusEl.dataset.state = stateName;
  statusEl.textContent = text;
}
export function flash(message) {
  statusEl.dataset.state = 'error';
  statusEl.textContent = message;
  setTimeout(() => { if (statusEl.textContent === message) setStatus(...shownStatus); }, 4000);
}
