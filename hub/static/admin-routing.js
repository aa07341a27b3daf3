/* The Routing tab: teams (name, how their queue is assigned, who is in them), where each
 * channel's new conversations go, and each member's capacity. Every change is saved at once
 * (PATCH) and audited by the server; the inboxes and the queue follow live. */
import { api, el, ib } from './common.js';

const MODES = ['manual', 'round_robin', 'least_busy'];
const MAX_CAPACITY = 1000;

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

function cell(content, label) {
  const td = el('td');
  if (typeof content === 'string') td.textContent = content;
  else td.append(content);
  if (label) td.dataset.label = label;
  return td;
}

function picker(options, value, label) {
  const select = el('select');
  select.setAttribute('aria-label', label);
  options.forEach(([key, text]) => {
    const option = el('option', null, text);
    option.value = key;
    select.append(option);
  });
  select.value = value;
  return select;
}

export function routingPanel({ t, problem, confirmDialog }) {
  const error = ib('routing-error'), teamsBody = ib('teams'), channelsBody = ib('channel-routing');
  const capacities = ib('capacities'), form = ib('team-form'), teamName = ib('team-name');
  const modes = () => MODES.map((m) => [m, t(`assign-${m}`)]);
  let teams = [], members = [], channels = [];

  ib('team-assignment').replaceChildren(...modes().map(([key, text]) => { const o = el('option', null, text); o.value = key; return o; }));

  async function save(method, url, body, select, before) {
    say(error, '');
    const r = await api(method, url, body);
    if (!r.ok) {
      if (select) { select.value = before; select.focus(); }
      say(error, problem(r, 'could-not-change'));
      return null;
    }
    return r.data;
  }

  function teamRow(team) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'team', id: team.id });
    const mode = picker(modes(), team.assignment, t('assignment-of', { name: team.name }));
    mode.dataset.ib = 'team-mode';
    mode.addEventListener('change', async () => {
      const done = await save('PATCH', `/api/teams/${team.id}`, { assignment: mode.value }, mode, team.assignment);
      if (done) team.assignment = done.assignment;
    });
    const who = el('fieldset', 'checks');
    who.append(el('legend', 'sr', t('members-of', { name: team.name })));
    members.forEach((m) => {
      const box = el('input');
      box.type = 'checkbox';
      box.value = m.id;
      box.dataset.ib = 'team-member';
      box.checked = team.member_ids.includes(m.id);
      box.addEventListener('change', async () => {
        const ids = [...who.querySelectorAll('input:checked')].map((b) => b.value);
        const done = await save('PATCH', `/api/teams/${team.id}`, { member_ids: ids });
        if (done) team.member_ids = done.member_ids;
        else box.checked = !box.checked;
      });
      const label = el('label', 'check');
      label.append(box, el('span', null, m.name));
      who.append(label);
    });
    const remove = el('button', 'ghost danger-ghost', t('delete-team'));
    remove.type = 'button';
    remove.dataset.ib = 'team-delete';
    remove.setAttribute('aria-label', `${t('delete-team')}: ${team.name}`);
    remove.addEventListener('click', async () => {
      if (!await confirmDialog(t('delete-team-title', { name: team.name }), t('delete-team-text'), t('delete-team'))) return;
      if (await save('DELETE', `/api/teams/${team.id}`) !== null) load();
    });
    tr.append(cell(team.name, t('name')), cell(mode, t('assignment')), cell(who, t('team-members')), cell(remove));
    return tr;
  }

  function channelRow(channel) {
    const routing = Object.assign({ team_id: null, assignment: 'manual' }, (channel.settings || {}).routing);
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'channel-route', id: channel.id });
    const queue = picker([['', t('queue-workspace')], ...teams.map((x) => [x.id, x.name])], routing.team_id || '', t('queue-of', { name: channel.name }));
    queue.dataset.ib = 'route-team';
    const mode = picker(modes(), routing.assignment, t('assignment-of', { name: channel.name }));
    mode.dataset.ib = 'route-mode';
    const teamMode = el('span', 'muted', t('assign-team'));
    const sync = () => { mode.hidden = Boolean(queue.value); teamMode.hidden = !queue.value; };
    const store = async (select, before) => {
      const body = { routing: { team_id: queue.value || null, assignment: mode.value } };
      const done = await save('PATCH', `/api/channels/${channel.id}`, body, select, before);
      if (done) channel.settings = done.settings;
      sync();
    };
    queue.addEventListener('change', () => store(queue, routing.team_id || ''));
    mode.addEventListener('change', () => store(mode, routing.assignment));
    const how = el('td');
    how.dataset.label = t('assignment');
    how.append(mode, teamMode);
    sync();
    tr.append(cell(channel.name, t('channel')), cell(queue, t('queue')), how);
    return tr;
  }

  function capacityRow(m) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'capacity-row', id: m.id });
    const input = el('input');
    Object.assign(input, { type: 'number', min: '0', max: String(MAX_CAPACITY), step: '1', inputMode: 'numeric' });
    input.dataset.ib = 'capacity';
    input.setAttribute('aria-label', t('capacity-of', { name: m.name }));
    input.value = m.capacity === null || m.capacity === undefined ? '' : String(m.capacity);
    input.addEventListener('change', async () => {
      const raw = input.value.trim();
      const value = raw === '' ? null : Number(raw);
      if (value !== null && !(Number.isInteger(value) && value >= 0 && value <= MAX_CAPACITY)) {
        input.setAttribute('aria-invalid', 'true');
        return say(error, t('capacity-invalid'));
      }
      input.removeAttribute('aria-invalid');
      const done = await save('PATCH', `/api/members/${m.id}`, { capacity: value });
      if (done) m.capacity = done.capacity;
      else input.value = m.capacity === null ? '' : String(m.capacity);
    });
    tr.append(cell(m.name, t('name')), cell(input, t('capacity')));
    return tr;
  }

  async function load() {
    say(error, '');
    const [tr, mr, cr] = await Promise.all([api('GET', '/api/teams'), api('GET', '/api/members'), api('GET', '/api/channels/health')]);
    const failed = [tr, mr, cr].find((r) => !r.ok);
    if (failed) return say(error, problem(failed, 'could-not-load'));
    teams = tr.data.items;
    members = mr.data.items;
    channels = cr.data.items.filter((c) => c.status !== 'disconnected');
    teamsBody.replaceChildren(...teams.map(teamRow));
    channelsBody.replaceChildren(...channels.map(channelRow));
    capacities.replaceChildren(...members.map(capacityRow));
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = teamName.value.trim();
    if (!name) { teamName.focus(); return; }
    const done = await save('POST', '/api/teams', { name, assignment: ib('team-assignment').value });
    if (!done) return;
    teamName.value = '';
    load();
  });

  return { load };
}
