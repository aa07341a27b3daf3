/* Canned responses in the inbox: typing /shortcut in the composer offers the matching saved
 * replies (↑/↓ choose, Enter or Tab inserts, Escape closes), inserted as the hub rendered them
 * for the open conversation's contact and this agent; and the "Saved replies" dialog, where an
 * agent keeps their own and an admin the workspace's. */
import { api, el, errorText } from './common.js';

const TOKEN = /(^|\s)\/([a-z0-9_-]{0,40})$/; // "/word" right before the caret

export function cannedComposer({ textarea, menu, conversationId, t }) {
  let items = null, forId = null, shown = [], at = 0, loading = null;

  async function load() {
    const id = conversationId();
    if (forId === id && items) return items;
    if (loading && forId === id) return loading;
    forId = id;
    loading = api('GET', `/api/canned-responses?conversation_id=${encodeURIComponent(id)}`)
      .then((r) => { items = r.ok ? r.data.items : []; return items; })
      .catch(() => { items = []; return items; })
      .finally(() => { loading = null; });
    return loading;
  }

  function token() {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = textarea.selectionStart === textarea.selectionEnd && before.match(TOKEN);
    return match ? { word: match[2], start: before.length - match[2].length - 1 } : null;
  }

  function close() {
    menu.hidden = true;
    shown = [];
    textarea.removeAttribute('aria-activedescendant');
    textarea.setAttribute('aria-expanded', 'false');
  }

  function render() {
    menu.replaceChildren(...shown.map((c, i) => {
      const option = el('li', 'canned-option');
      option.id = `canned-${i}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', String(i === at));
      option.dataset.ib = 'canned-option';
      option.dataset.shortcut = c.shortcut;
      option.append(el('strong', null, `/${c.shortcut}`), el('span', 'muted', c.rendered || c.text));
      option.addEventListener('mousedown', (e) => { e.preventDefault(); insert(c); });
      return option;
    }));
    if (!shown.length) menu.append(el('li', 'muted', t('canned-none')));
    menu.hidden = false;
    textarea.setAttribute('aria-expanded', 'true');
    if (shown.length) textarea.setAttribute('aria-activedescendant', `canned-${at}`);
  }

  async function update() {
    const found = token();
    if (!found || !conversationId()) return close();
    const all = await load();
    if (token() === null) return close(); // typed on while it loaded
    const seen = new Set();
    shown = all.filter((c) => c.shortcut.startsWith(found.word) && !seen.has(c.shortcut) && seen.add(c.shortcut)).slice(0, 8);
    at = Math.min(at, Math.max(0, shown.length - 1));
    render();
  }

  function insert(c) {
    const found = token();
    if (!found) return close();
    const text = c.rendered || c.text;
    const end = textarea.selectionStart;
    textarea.value = textarea.value.slice(0, found.start) + text + textarea.value.slice(end);
    const caret = found.start + text.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.dispatchEvent(new Event('input'));
    textarea.focus();
  }

  textarea.setAttribute('role', 'combobox');
  textarea.setAttribute('aria-autocomplete', 'list');
  textarea.setAttribute('aria-controls', menu.id);
  textarea.setAttribute('aria-expanded', 'false');
  textarea.addEventListener('input', () => { update(); });
  textarea.addEventListener('blur', () => setTimeout(close, 100));
  // Registered before the composer's own Enter-to-send: an open menu takes these keys.
  textarea.addEventListener('keydown', (e) => {
    if (menu.hidden) return;
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); return close(); }
    if (!shown.length) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      at = (at + (e.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length;
      render();
    } else if ((e.key === 'Enter' && !e.shiftKey && !e.isComposing) || e.key === 'Tab') {
      e.preventDefault();
      e.stopImmediatePropagation();
      insert(shown[at]);
    }
  });
  return { forget() { items = null; forId = null; close(); } };
}

/* The "Saved replies" dialog: the workspace's and this agent's own; add, delete. */
export function cannedDialog({ dialog, list, form, error, isAdmin, t, changed }) {
  const say = (text) => { error.textContent = text || ''; error.hidden = !text; };

  async function load() {
    say('');
    const r = await api('GET', '/api/canned-responses').catch(() => ({ ok: false }));
    if (!r.ok) return say(errorText(r, t('action-failed', { why: r.status || '' })));
    list.replaceChildren(...r.data.items.map((c) => {
      const li = el('li', 'canned-item');
      li.dataset.ib = 'canned-item';
      li.dataset.shortcut = c.shortcut;
      li.append(el('strong', null, `/${c.shortcut}`), el('span', 'tag', t(c.personal ? 'canned-mine' : 'canned-shared')), el('p', null, c.text));
      if (c.personal || isAdmin()) {
        const remove = el('button', 'ghost', t('delete'));
        remove.type = 'button';
        remove.dataset.ib = 'canned-delete';
        remove.setAttribute('aria-label', `${t('delete')}: /${c.shortcut}`);
        remove.addEventListener('click', async () => {
          const done = await api('DELETE', `/api/canned-responses/${c.id}`).catch(() => ({ ok: false }));
          if (!done.ok) return say(errorText(done, t('action-failed', { why: done.status || '' })));
          changed();
          load();
        });
        li.append(remove);
      }
      return li;
    }));
    if (!r.data.items.length) list.append(el('li', 'muted', t('canned-empty')));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const body = {
      shortcut: String(data.get('shortcut') || '').trim().replace(/^\//, '').toLowerCase(),
      text: String(data.get('text') || '').trim(),
      personal: !isAdmin() || data.get('personal') === 'on',
    };
    const r = await api('POST', '/api/canned-responses', body).catch(() => ({ ok: false }));
    if (!r.ok) return say(errorText(r, t('action-failed', { why: r.status || '' })));
    form.reset();
    changed();
    load();
  });

  return {
    open() {
      form.querySelector('[data-ib=canned-personal-row]').hidden = !isAdmin();
      dialog.showModal();
      load();
    },
  };
}
