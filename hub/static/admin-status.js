/* The Status tab: the figures of GET /api/status (open connections, events delivered per
 * second and how long after publishing, the workspace's event stream and its worker groups,
 * replies sent to the platforms, channel health, a loss of the bus's data until an operator
 * acknowledges it), refreshed while the tab is open.
 * Monitoring systems read the same figures from /metrics (docs/operations.md). */
import { api, el, ib, lang } from './common.js';

const EVERY_MS = 5000;

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function statusPanel({ t, problem }) {
  const panel = ib('panel-status'), error = ib('status-error'), updated = ib('status-updated');
  let timer = null;

  const number = (n, digits = 0) => Number(n).toLocaleString(lang(), {
    minimumFractionDigits: digits, maximumFractionDigits: digits,
  });
  // A known key's text, else the server's value as it is (a group or code added later).
  const label = (key, raw) => { const text = t(key); return text === key ? raw : text; };

  /* Sets a cell's text and keeps the raw value in data-value (for scripts and tests). */
  function figure(name, raw, text) {
    const cell = ib(name);
    cell.textContent = text;
    cell.dataset.value = raw === null ? '' : String(raw);
  }

  function fill(body, items, empty, cells) {
    if (!items.length) {
      const row = el('tr');
      const cell = el('td', 'muted', empty);
      cell.colSpan = body.closest('table').querySelectorAll('thead th').length;
      row.append(cell);
      body.replaceChildren(row);
      return;
    }
    body.replaceChildren(...items.map((item) => {
      const row = el('tr');
      cells(item).forEach(([text, raw]) => {
        const cell = el('td', null, text);
        if (raw !== undefined) cell.dataset.value = String(raw);
        row.append(cell);
      });
      return row;
    }));
  }

  function show(s) {
    const unavailable = t('st-unavailable');
    figure('st-agents', s.sockets.agent, number(s.sockets.agent));
    figure('st-visitors', s.sockets.visitor, number(s.sockets.visitor));
    figure('st-rate', s.events.per_s, number(s.events.per_s, 2));
    const { p50, p99 } = s.latency_s;
    figure('st-latency', p50, p50 === null ? t('st-none-yet')
      : t('st-latency-value', { p50: number(p50 * 1000, 1), p99: number(p99 * 1000, 1) }));
    figure('st-stream', s.stream && s.stream.entries, s.stream ? number(s.stream.entries) : unavailable);
    const groups = s.stream ? Object.entries(s.stream.groups) : [];
    fill(ib('st-groups'), groups, s.stream ? t('st-no-groups') : unavailable, ([name, g]) => [
      [label(`group-${name}`, name)], [number(g.lag), g.lag], [number(g.pending), g.pending],
    ]);
    fill(ib('st-outbound'), s.outbound, t('st-no-sends'), (o) => [
      [label(`kind-${o.channel}`, o.channel)], [label(`st-result-${o.result}`, o.result)],
      [o.code === 'none' ? '' : o.code], [number(o.count), o.count],
    ]);
    const channels = s.channels ? Object.entries(s.channels) : [];
    fill(ib('st-channels'), channels, s.channels ? t('no-channels') : unavailable, ([status, n]) => [
      [label(`health-${status}`, status)], [number(n), n],
    ]);
    const loss = s.bus_loss;
    say(ib('status-bus-loss'), loss && t('st-bus-loss', {
      time: new Date(loss.detected_at).toLocaleString(lang()),
    }));
    updated.textContent = t('st-updated', { time: new Date().toLocaleTimeString(lang()) });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => { if (!panel.hidden) load(); }, EVERY_MS);
  }

  async function load() {
    clearTimeout(timer);
    let r;
    try {
      r = await api('GET', '/api/status');
    } catch (e) {
      say(error, t('unreachable'));
      return schedule();
    }
    if (!r.ok) {
      say(error, problem(r, 'could-not-load'));
      if (r.status !== 401 && r.status !== 403) schedule();
      return;
    }
    say(error, '');
    show(r.data);
    schedule();
  }

  ib('status-refresh').addEventListener('click', load);
  return { load };
}
