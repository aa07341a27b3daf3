/* Small builders the console's newer tabs share (API tokens, saved replies, privacy): elements
 * made with their text set (never HTML), a status line, a labelled input, a table. */
import { el } from './common.js';

export function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function button(text, name, cls = 'ghost', type = 'button') {
  const b = el('button', cls, text);
  b.type = type;
  if (name) b.dataset.ib = name;
  return b;
}

export function line(cls, name, role) {
  const p = el('p', cls);
  p.dataset.ib = name;
  if (role) p.setAttribute('role', role);
  p.hidden = true;
  return p;
}

/* <label><span>text</span><input|textarea|select></label>, the control given. */
export function field(text, control, name) {
  control.dataset.ib = name;
  const label = el('label');
  label.append(el('span', null, text), control);
  return label;
}

export function input(attrs = {}) {
  const node = el('input');
  Object.entries(attrs).forEach(([k, v]) => node.setAttribute(k, v));
  return node;
}

export function cell(text, label) {
  const td = el('td', null, text);
  if (label) td.dataset.label = label;
  return td;
}

/* A table with a header row; returns [table, tbody]. `name` marks the tbody. */
export function table(headings, name) {
  const tableNode = el('table', 'rows');
  const head = el('tr');
  headings.forEach((h) => {
    const th = el('th');
    th.scope = 'col';
    if (h.sr) th.append(el('span', 'sr', h.text));
    else th.textContent = h;
    head.append(th);
  });
  const thead = el('thead');
  thead.append(head);
  const tbody = el('tbody');
  tbody.dataset.ib = name;
  tableNode.append(thead, tbody);
  return [tableNode, tbody];
}

export function heading(level, text, id) {
  const h = el(`h${level}`, null, text);
  if (id) h.id = id;
  return h;
}
