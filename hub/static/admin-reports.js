/* The Reports tab: conversations opened and resolved, first response and resolution times,
 * messages in and out, for a period, by day, channel, team or agent; a bar chart of one
 * measure, the table, and the same as CSV. The hub computes it all (GET /api/reports). */
import { api, el, ib } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
const MEASURES = [
  'conversations_opened', 'conversations_resolved', 'first_response_avg_s', 'resolution_avg_s',
  'messages_in', 'messages_out',
];
const DURATIONS = new Set(['first_response_avg_s', 'resolution_avg_s']);

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

const isoDay = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;

export function duration(seconds, t) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return t('dur-s', { n: s });
  if (s < 3600) return t('dur-m', { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t('dur-h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t('dur-d', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

export function reportsPanel({ t, problem }) {
  const form = ib('report-form'), from = ib('report-from'), to = ib('report-to'), by = ib('report-by');
  const zone = ib('report-timezone'), measure = ib('report-measure'), error = ib('report-error');
  const chart = ib('report-chart'), body = ib('report-rows'), totals = ib('report-totals'), csv = ib('report-csv');
  let last = null;

  const today = new Date();
  const weekAgo = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6);
  from.value = isoDay(weekAgo);
  to.value = isoDay(today);
  zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  measure.replaceChildren(...MEASURES.map((m) => { const o = el('option', null, t(`m-${m}`)); o.value = m; return o; }));

  const show = (m, value) => (DURATIONS.has(m) ? duration(value, t) : String(value ?? 0));

  function params(extra) {
    return new URLSearchParams({ from: from.value, to: to.value, by: by.value, timezone: zone.value.trim() || 'UTC', ...extra });
  }

  function drawChart(rows, m) {
    const width = 640, height = 220, pad = 28;
    const values = rows.map((r) => r[m] || 0);
    const top = Math.max(1, ...values);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', t('chart-of', { measure: t(`m-${m}`) }));
    const step = (width - pad) / Math.max(1, rows.length);
    rows.forEach((r, i) => {
      const h = ((r[m] || 0) / top) * (height - pad * 2);
      const bar = document.createElementNS(SVG, 'rect');
      const w = Math.min(step * 0.8, 48);
      Object.entries({ x: pad + i * step + (step - w) / 2, y: height - pad - h, width: w, height: Math.max(h, 0), rx: 2 })
        .forEach(([k, v]) => bar.setAttribute(k, String(v)));
      bar.setAttribute('class', 'bar');
      bar.dataset.ib = 'report-bar';
      bar.dataset.key = r.key;
      const tip = document.createElementNS(SVG, 'title');
      tip.textContent = `${r.label}: ${show(m, r[m])}`;
      bar.append(tip);
      svg.append(bar);
      if (rows.length <= 14 || i % Math.ceil(rows.length / 14) === 0) {
        const label = document.createElementNS(SVG, 'text');
        label.setAttribute('x', String(pad + i * step + step / 2));
        label.setAttribute('y', String(height - 8));
        label.setAttribute('text-anchor', 'middle');
        label.textContent = r.label.length > 12 ? `${r.label.slice(0, 11)}…` : r.label;
        svg.append(label);
      }
    });
    const axis = document.createElementNS(SVG, 'text');
    axis.setAttribute('x', '2');
    axis.setAttribute('y', '14');
    axis.textContent = show(m, top);
    svg.append(axis);
    chart.replaceChildren(svg);
  }

  function render(data) {
    last = data;
    totals.replaceChildren(...MEASURES.map((m) => {
      const card = el('div', 'figure');
      card.dataset.ib = 'report-total';
      card.dataset.measure = m;
      card.append(el('strong', null, show(m, data.totals[m])), el('span', 'muted', t(`m-${m}`)));
      return card;
    }));
    body.replaceChildren(...data.rows.map((r) => {
      const tr = el('tr');
      tr.dataset.ib = 'report-row';
      tr.dataset.key = r.key;
      const first = el('td', null, r.label);
      first.dataset.label = t(`by-${data.by}`);
      tr.append(first, ...MEASURES.map((m) => { const td = el('td', 'num', show(m, r[m])); td.dataset.label = t(`m-${m}`); return td; }));
      return tr;
    }));
    drawChart(data.rows, measure.value);
    csv.href = `/api/reports?${params({ format: 'csv' })}`;
    csv.hidden = false;
  }

  async function load() {
    say(error, '');
    const r = await api('GET', `/api/reports?${params()}`);
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    render(r.data);
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  measure.addEventListener('change', () => { if (last) drawChart(last.rows, measure.value); });
  return { load };
}
