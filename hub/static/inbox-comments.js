/* A public comment's moderation in the open thread: Hide or Show and Delete under a person's
 * Instagram or Facebook comment. The platform is asked through the REST API; what it did comes
 * back to every open inbox as message.updated (this one too), so the button only waits. Delete
 * asks once more on the button itself before it is sent. */
import { api, el, errorText } from './common.js';
import { flash, state, t } from './inbox-state.js';
import { setDecorator } from './render.js';

const MODERATED = ['instagram', 'messenger'];

function button(key, hook, onClick) {
  const b = el('button', 'ghost small', t(key));
  b.type = 'button';
  b.dataset.ib = hook;
  b.setAttribute('aria-label', t(`${key}-of`));
  b.addEventListener('click', onClick);
  return b;
}

async function moderate(m, action, bar) {
  const base = `/api/conversations/${encodeURIComponent(m.conversation_id)}/messages/${encodeURIComponent(m.id)}`;
  bar.querySelectorAll('button').forEach((b) => { b.disabled = true; });
  const r = action === 'delete'
    ? await api('DELETE', base).catch(() => ({ ok: false }))
    : await api('POST', `${base}/${action}`).catch(() => ({ ok: false }));
  bar.querySelectorAll('button').forEach((b) => { b.disabled = false; });
  if (!r.ok) flash(t('comment-action-failed', { why: errorText(r, r.status || '') }));
}

function tools(node, m) {
  node.querySelector('.comment-tools')?.remove();
  if (m.kind !== 'comment' || m.direction !== 'in' || m.deleted || !m.id || m.note || m.private_reply) return;
  if (!MODERATED.includes(m.channel_kind) || m.conversation_id !== state.openId) return;
  const bar = el('div', 'comment-tools');
  bar.dataset.ib = 'comment-tools';
  const toggle = m.hidden
    ? button('comment-unhide', 'comment-unhide', () => moderate(m, 'unhide', bar))
    : button('comment-hide', 'comment-hide', () => moderate(m, 'hide', bar));
  let armed = null;
  const remove = button('comment-delete', 'comment-delete', () => {
    if (!armed) { // a second click within a few seconds deletes
      remove.textContent = t('comment-delete-sure');
      armed = setTimeout(() => { armed = null; remove.textContent = t('comment-delete'); }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    moderate(m, 'delete', bar);
  });
  remove.classList.add('danger-ghost');
  bar.append(toggle, remove);
  node.querySelector('.meta').append(bar);
}

setDecorator(tools);
