/* The Integrations tab: outbound webhook endpoints (add, with the signing secret shown once;
 * remove) and their deliveries, with the dead-letter list and a replay button. */
import { api, el, ib, stamp } from './common.js';

const EVENTS = ['message.created', 'message.updated', 'conversation.updated', 'contact.updated'];

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function hooksPanel({ t, problem, confirmDialog, copyButton }) {
  const form = ib('hook-form'), url = ib('hook-url'), error = ib('hooks-error');
  const list = ib('hooks'), deliveries = ib('deliveries'), filter = ib('delivery-status');
  const made = ib('hook-made'), secret = ib('hook-secret');
  const boxes = ib('hook-events');

  boxes.replaceChildren(...EVENTS.map((name, i) => {
    const label = el('label', 'check');
    const box = el('input');
    Object.assign(box, { type: 'checkbox', name: 'events', value: name, checked: i < 3 });
    box.dataset.ib = 'hook-event';
    label.append(box, el('span', null, name));
    return label;
  }));
  copyButton(ib('copy-hook-secret'), secret, ib('hook-copied'));

  function hookRow(h) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'hook', id: h.id });
    const remove = el('button', 'ghost danger-ghost', t('remove'));
    remove.type = 'button';
    remove.dataset.ib = 'hook-remove';
    remove.setAttribute('aria-label', `${t('remove')}: ${h.url}`);
    remove.addEventListener('click', async () => {
      if (!await confirmDialog(t('hook-remove-title'), h.url, t('remove'))) return;
      const r = await api('DELETE', `/api/hooks/${h.id}`);
      if (!r.ok) return say(error, problem(r, 'could-not-change'));
      load();
    });
    const cells = [[h.url, 'hook-url-col'], [h.events.join(', '), 'hook-events-col'], [stamp(h.created_at), 'hook-added']];
    tr.append(...cells.map(([text, label]) => { const td = el('td', null, text); td.dataset.label = t(label); return td; }), el('td', 'row-actions'));
    tr.lastChild.append(remove);
    return tr;
  }

  function deliveryRow(d) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'delivery', id: d.id, status: d.status });
    const badge = el('span', `health ${d.status === 'dead' ? 'disconnected' : d.status === 'delivered' ? 'connected' : 'needs_reconnect'}`, t(`delivery-${d.status}`));
    const actions = el('td', 'row-actions');
    if (d.status === 'dead') {
      const again = el('button', 'ghost', t('replay'));
      again.type = 'button';
      again.dataset.ib = 'delivery-replay';
      again.addEventListener('click', async () => {
        const r = await api('POST', `/api/hooks/deliveries/${d.id}/replay`);
        if (!r.ok) return say(error, problem(r, 'could-not-change'));
        loadDeliveries();
      });
      actions.append(again);
    }
    const status = el('td');
    status.append(badge);
    tr.append(el('td', null, stamp(d.created_at)), el('td', null, d.event), status,
      el('td', 'num', String(d.attempts)), el('td', null, d.last_error || ''), actions);
    return tr;
  }

  async function loadDeliveries() {
    const q = filter.value ? `?status=${encodeURIComponent(filter.value)}` : '';
    const r = await api('GET', `/api/hooks/deliveries${q}`);
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    deliveries.replaceChildren(...r.data.items.map(deliveryRow));
    if (!r.data.items.length) {
      const td = el('td', 'muted', t('no-deliveries'));
      td.colSpan = 6;
      const tr = el('tr');
      tr.append(td);
      deliveries.append(tr);
    }
  }

  async function load() {
    say(error, '');
    const r = await api('GET', '/api/hooks');
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    list.replaceChildren(...r.data.items.map(hookRow));
    await loadDeliveries();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const events = [...boxes.querySelectorAll('input:checked')].map((b) => b.value);
    const r = await api('POST', '/api/hooks', { url: url.value.trim(), events });
    if (!r.ok) {
      say(error, problem(r, 'could-not-save'));
      url.focus();
      return;
    }
    say(error, '');
    url.value = '';
    secret.textContent = r.data.secret;
    made.hidden = false;
    made.focus();
    load();
  });
  filter.addEventListener('change', loadDeliveries);
  return { load };
}
