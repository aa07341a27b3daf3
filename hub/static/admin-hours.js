/* The business-hours editor of a channel's settings (admin console, Channels): always open, or
 * a time zone and one range a day (more ranges the hub keeps are shown read-only and kept), an
 * offline message and an auto-reply. */
import { el, ib } from './common.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const OPEN = '09:00', CLOSE = '18:00'; // what a newly opened day starts with
const MIDNIGHT = '24:00'; // how the hub ends a range at midnight; a time field shows it as 00:00
const WEEKDAYS = DAYS.slice(0, 5);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/* The browser's time-zone names, for the time-zone field's suggestions. */
function timeZones() {
  let zones = [];
  try {
    if (typeof Intl.supportedValuesOf === 'function') zones = Intl.supportedValuesOf('timeZone');
  } catch (e) { /* an older browser: no suggestions, typing still works */ }
  return [...new Set(['UTC', ...zones])];
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch (e) {
    return 'UTC';
  }
}

export function hoursEditor({ t }) {
  const hoursBox = ib('webchat-hours'), always = ib('webchat-always-open'), setHours = ib('webchat-set-hours');
  const zone = ib('webchat-timezone');
  let hoursFrom = null; // the hours as loaded: fields the form does not show are sent back as they came
  const extra = {}; // day -> the ranges after the first, which the form shows read-only and keeps

  ib('timezones').replaceChildren(...timeZones().map((z) => { const o = el('option'); o.value = z; return o; }));

  const days = Object.fromEntries(DAYS.map((day) => {
    const row = el('div', 'day');
    Object.assign(row.dataset, { ib: 'hours-day', day });
    const name = el('span', 'dayname', t(`day-${day}`));
    const start = el('input'), end = el('input');
    [[start, 'hours-start', 'opens'], [end, 'hours-end', 'closes']].forEach(([input, key, label]) => {
      input.type = 'time';
      input.dataset.ib = key;
      input.className = key;
      input.setAttribute('aria-label', t(label, { day: t(`day-${day}`) }));
    });
    const dash = el('span', 'dash', '–');
    dash.setAttribute('aria-hidden', 'true');
    const closed = el('input');
    closed.type = 'checkbox';
    closed.dataset.ib = 'hours-closed';
    closed.setAttribute('aria-label', t('closed-on', { day: t(`day-${day}`) }));
    const closedLabel = el('label', 'check closed');
    closedLabel.append(closed, el('span', null, t('closed')));
    const more = el('small', 'muted extra');
    more.dataset.ib = 'hours-extra';
    more.hidden = true;
    closed.addEventListener('change', () => {
      if (!closed.checked && !start.value && !end.value) {
        start.value = OPEN;
        end.value = CLOSE;
      }
      showDay(day);
      if (!closed.checked) start.focus();
    });
    row.append(name, start, dash, end, closedLabel, more);
    return [day, { row, start, end, closed, more }];
  }));
  ib('hours-days').replaceChildren(...DAYS.map((day) => days[day].row));

  function showDay(day) {
    const d = days[day], shut = d.closed.checked;
    d.start.disabled = shut;
    d.end.disabled = shut;
    d.row.classList.toggle('shut', shut);
    const ranges = extra[day] || [];
    d.more.hidden = shut || !ranges.length;
    d.more.textContent = ranges.length ? t('also-open', { ranges: ranges.map((r) => r.join('–')).join(', ') }) : '';
  }

  function showHoursMode() {
    hoursBox.hidden = !setHours.checked;
  }

  function fillHours(hours) {
    hoursFrom = isObject(hours) ? hours : null;
    const h = hoursFrom || {};
    always.checked = !hoursFrom;
    setHours.checked = !!hoursFrom;
    zone.value = typeof h.timezone === 'string' ? h.timezone : browserZone();
    zone.removeAttribute('aria-invalid');
    const given = isObject(h.days) ? h.days : null;
    DAYS.forEach((day) => {
      const d = days[day];
      let ranges = given ? given[day] : (WEEKDAYS.includes(day) ? [[OPEN, CLOSE]] : []);
      ranges = Array.isArray(ranges) ? ranges.filter((r) => Array.isArray(r) && r.length === 2) : [];
      const [first] = ranges;
      d.closed.checked = !first;
      d.start.value = first ? String(first[0]) : '';
      d.end.value = first ? (first[1] === MIDNIGHT ? '00:00' : String(first[1])) : '';
      extra[day] = ranges.slice(1);
      showDay(day);
    });
    ib('webchat-offline').value = typeof h.offline_message === 'string' ? h.offline_message : '';
    ib('hours-auto-reply').value = typeof h.auto_reply === 'string' ? h.auto_reply : '';
    showHoursMode();
  }

  /* The hours to send: null for "always open"; throws an Error (with .focus) on a gap. */
  function readHours() {
    if (!setHours.checked) return null;
    const timezone = zone.value.trim();
    if (!timezone) throw Object.assign(new Error(t('need-timezone')), { focus: zone });
    const out = { ...(isObject(hoursFrom && hoursFrom.days) ? hoursFrom.days : {}) };
    DAYS.forEach((day) => {
      const d = days[day];
      if (d.closed.checked) {
        out[day] = [];
        return;
      }
      if (!d.start.value || !d.end.value) {
        throw Object.assign(new Error(t('need-times', { day: t(`day-${day}`) })), { focus: d.start.value ? d.end : d.start });
      }
      const end = d.end.value === '00:00' ? MIDNIGHT : d.end.value; // open until midnight
      out[day] = [[d.start.value, end], ...(extra[day] || [])];
    });
    return {
      ...(hoursFrom || {}),
      timezone,
      days: out,
      offline_message: ib('webchat-offline').value.trim() || null,
      auto_reply: ib('hours-auto-reply').value.trim() || null,
    };
  }

  always.addEventListener('change', showHoursMode);
  setHours.addEventListener('change', () => {
    showHoursMode();
    if (setHours.checked) zone.focus();
  });

  return { fill: fillHours, read: readHours };
}
