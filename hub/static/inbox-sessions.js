/* "Sessions": where this agent is signed in (GET /api/me/sessions), this browser marked; sign
 * out any other one, or all the others. Ending a session closes its sockets too (4410). */
import { api, el, errorText, stamp } from './common.js';
import { $, t } from './inbox-state.js';

const dialog = $('sessions-dialog'), list = $('sessions-list'), error = $('sessions-error');
const say = (text) => { error.textContent = text || ''; error.hidden = !text; };
const failed = (r) => say(errorText(r, t('action-failed', { why: r.status || '' })));

async function load() {
  say('');
  const r = await api('GET', '/api/me/sessions').catch(() => ({ ok: false }));
  if (!r.ok) return failed(r);
  list.replaceChildren(...r.data.items.map((s) => {
    const li = el('li', 'session-item');
    li.dataset.ib = 'session-item';
    li.dataset.current = s.current ? 'true' : 'false';
    const where = [s.user_agent || t('session-unknown-browser'), s.ip].filter(Boolean).join(' · ');
    li.append(el('strong', null, where));
    if (s.current) li.append(el('span', 'tag', t('session-this')));
    li.append(el('p', 'muted', t('session-times', { since: stamp(s.created_at), seen: stamp(s.last_seen_at) })));
    if (!s.current) {
      const end = el('button', 'ghost', t('session-end'));
      end.type = 'button';
      end.dataset.ib = 'session-end';
      end.addEventListener('click', async () => {
        const done = await api('DELETE', `/api/me/sessions/${s.id}`).catch(() => ({ ok: false }));
        if (!done.ok) return failed(done);
        load();
      });
      li.append(end);
    }
    return li;
  }));
}

$('sessions-end-others').addEventListener('click', async () => {
  const r = await api('DELETE', '/api/me/sessions').catch(() => ({ ok: false }));
  if (!r.ok) return failed(r);
  load();
});
$('sessions-open').addEventListener('click', () => { dialog.showModal(); load(); });
