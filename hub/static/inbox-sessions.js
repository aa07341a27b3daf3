/* "Sessions": where this agent is signed in (GET /api/me/sessions), this browser marked; sign
 * out any other one, or all the others. Ending a session closes its sockets too (4410). */
import { api, errorText } from './common.js';
import { $, t } from './inbox-state.js';
import { sessionItems } from './session-list.js';

const dialog = $('sessions-dialog'), list = $('sessions-list'), error = $('sessions-error');
const say = (text) => { error.textContent = text || ''; error.hidden = !text; };
const failed = (r) => say(errorText(r, t('action-failed', { why: r.status || '' })));

async function load() {
  say('');
  const r = await api('GET', '/api/me/sessions').catch(() => ({ ok: false }));
  if (!r.ok) return failed(r);
  list.replaceChildren(...sessionItems(r.data.items, t, { item: 'session-item', end: 'session-end' }, { changed: load, failed }));
}

$('sessions-end-others').addEventListener('click', async () => {
  const r = await api('DELETE', '/api/me/sessions').catch(() => ({ ok: false }));
  if (!r.ok) return failed(r);
  load();
});
$('sessions-open').addEventListener('click', () => { dialog.showModal(); load(); });
