/* The signed-in person's sessions (GET /api/me/sessions) as list items, shared by the inbox's
 * Sessions dialog and the Profile dialog: the browser and address, when it signed in and was
 * last seen, "This browser" marked, and Sign out on each of the others. */
import { api, el, stamp } from './common.js';

// `t` the page's translator; `ib` the data-ib names of an item and of its button; `changed` runs
// after a session was ended, `failed(answer)` when ending it was refused.
export function sessionItems(items, t, ib, { changed, failed }) {
  return items.map((s) => {
    const li = el('li', 'session-item');
    li.dataset.ib = ib.item;
    li.dataset.current = s.current ? 'true' : 'false';
    const where = [s.user_agent || t('session-unknown-browser'), s.ip].filter(Boolean).join(' · ');
    li.append(el('strong', null, where));
    if (s.current) li.append(el('span', 'tag', t('session-this')));
    li.append(el('p', 'muted', t('session-times', { since: stamp(s.created_at), seen: stamp(s.last_seen_at) })));
    if (!s.current) {
      const end = el('button', 'ghost', t('session-end'));
      end.type = 'button';
      end.dataset.ib = ib.end;
      end.setAttribute('aria-label', `${t('session-end')}: ${where}`);
      end.addEventListener('click', async () => {
        const done = await api('DELETE', `/api/me/sessions/${s.id}`).catch(() => ({ ok: false }));
        if (!done.ok) return failed(done);
        changed();
      });
      li.append(end);
    }
    return li;
  });
}
