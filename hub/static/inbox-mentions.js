/* @mentions in private notes: typing @ in a note offers the workspace's members (↑/↓ choose,
 * Enter or Tab inserts "@Name", Escape closes); the note is sent with the ids of those still
 * named in its text (`mentions`, validated by the hub), and the hub tells each one. Notes
 * show the names of members they mention highlighted (textContent only); the list's
 * "Mentions" filter shows the conversations where this agent was mentioned. */
import { el } from './common.js';
import { $, members, pane, reply, state, t } from './inbox-state.js';
import { setDecorator } from './render.js';

const TOKEN = /(^|\s)@([^\s@]{0,40})$/u; // "@word" right before the caret
export const mentioned = new Set(); // conversation ids where this agent was mentioned
const chosen = new Map(); // user id -> name, picked in the note being written

const menu = el('ul', 'canned-menu mention-menu');
menu.id = 'mention-menu';
menu.dataset.ib = 'mention-menu';
menu.setAttribute('role', 'listbox');
menu.hidden = true;
$('canned-menu').after(menu);

let shown = [], at = 0;
const others = () => [...members.entries()]
  .filter(([id, m]) => id !== (state.me && state.me.user_id) && m && m.name)
  .map(([id, m]) => ({ id, name: m.name }));

function token() {
  if (pane.dataset.mode !== 'note' || reply.selectionStart !== reply.selectionEnd) return null;
  const before = reply.value.slice(0, reply.selectionStart);
  const match = before.match(TOKEN);
  return match ? { word: match[2].toLowerCase(), start: before.length - match[2].length - 1 } : null;
}

function close() {
  if (menu.hidden) return;
  menu.hidden = true;
  shown = [];
  reply.setAttribute('aria-controls', 'canned-menu');
  reply.setAttribute('aria-expanded', 'false');
  reply.removeAttribute('aria-activedescendant');
}

function render() {
  menu.setAttribute('aria-label', t('mention-menu'));
  menu.replaceChildren(...shown.map((m, i) => {
    const option = el('li', 'canned-option');
    option.id = `mention-${i}`;
    option.setAttribute('role', 'option');
    option.setAttribute('aria-selected', String(i === at));
    option.dataset.ib = 'mention-option';
    option.dataset.userId = m.id;
    option.append(el('strong', null, `@${m.name}`));
    option.addEventListener('mousedown', (e) => { e.preventDefault(); insert(m); });
    return option;
  }));
  if (!shown.length) menu.append(el('li', 'muted', t('mention-none')));
  menu.hidden = false;
  reply.setAttribute('aria-controls', menu.id);
  reply.setAttribute('aria-expanded', 'true');
  if (shown.length) reply.setAttribute('aria-activedescendant', `mention-${at}`);
}

function update() {
  const found = token();
  if (!found) return close();
  shown = others().filter((m) => m.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(found.word))
    || m.name.toLowerCase().startsWith(found.word)).slice(0, 8);
  at = Math.min(at, Math.max(0, shown.length - 1));
  render();
}

function insert(m) {
  const found = token();
  if (!found) return close();
  const text = `@${m.name} `;
  const end = reply.selectionStart;
  reply.value = reply.value.slice(0, found.start) + text + reply.value.slice(end);
  const caret = found.start + text.length;
  reply.setSelectionRange(caret, caret);
  chosen.set(m.id, m.name);
  close();
  reply.focus();
}

reply.addEventListener('input', update);
// Closed when the focus leaves the box (not when the window loses it: it is there on return).
reply.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== reply) close(); }, 100));
// On the form, in the capture phase: before the composer's Enter-to-send on the textarea.
$('composer').addEventListener('keydown', (e) => {
  if (menu.hidden || e.target !== reply) return;
  if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); return close(); }
  if (!shown.length) return;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    e.stopPropagation();
    at = (at + (e.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length;
    render();
  } else if ((e.key === 'Enter' && !e.shiftKey && !e.isComposing) || e.key === 'Tab') {
    e.preventDefault();
    e.stopPropagation();
    insert(shown[at]);
  }
}, true);

/* The ids of the members the note being sent still names; forgets the choice. */
export function takeMentions(text) {
  const ids = [...chosen.entries()].filter(([, name]) => text.includes(`@${name}`)).map(([id]) => id);
  chosen.clear();
  return ids;
}

/* A note's text with the members it names (@Name) in highlighted spans. Only its text nodes
 * are split: the safe links `linkedText` made stay as they are (a name inside a link's text
 * is left alone, the link is what matters there). */
function highlighted(text, names) {
  const parts = [];
  let rest = text;
  while (rest) {
    let hit = -1, who = '';
    for (const n of names) {
      const i = rest.indexOf(`@${n}`);
      if (i >= 0 && (hit < 0 || i < hit)) { hit = i; who = n; }
    }
    if (hit < 0) { parts.push(document.createTextNode(rest)); break; }
    if (hit) parts.push(document.createTextNode(rest.slice(0, hit)));
    const span = el('span', 'mention', `@${who}`);
    span.dataset.ib = 'mention';
    parts.push(span);
    rest = rest.slice(hit + who.length + 1);
  }
  return parts;
}

setDecorator((node, m) => {
  if (!m.note || !m.text || m.deleted) return;
  const names = [...members.values()].map((u) => u && u.name).filter(Boolean)
    .sort((a, b) => b.length - a.length);
  const box = node.querySelector('.bubble > .text');
  if (!box || !names.some((n) => m.text.includes(`@${n}`))) return;
  for (const child of [...box.childNodes]) {
    if (child.nodeType !== Node.TEXT_NODE || !names.some((n) => child.data.includes(`@${n}`))) continue;
    child.replaceWith(...highlighted(child.data, names));
  }
});
