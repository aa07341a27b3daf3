/* The Automation tab: the workspace's rules in the order they run (switched on and off, moved,
 * edited, deleted) and the editor of one rule: its trigger, conditions and actions, with a
 * "Try it" box that asks the server what the rule would do with a made-up message (nothing is
 * stored or sent). Every change is saved at once by the server, which audits it. */
import { api, el, ib, stamp } from './common.js';
import {
  ACTIONS, actionRow, actionWords, clashes, conditionRow, conditionWords, split,
} from './admin-rule-rows.js';

const TRIGGERS = ['message.received', 'conversation.created', 'conversation.resolved', 'comment.created'];
const MAX_CONDITIONS = 20, MAX_ACTIONS = 10;

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function automationPanel({ t, problem, confirmDialog }) {
  const list = ib('rules'), empty = ib('no-rules'), error = ib('automation-error'), done = ib('rule-saved');
  const opener = ib('new-rule'), form = ib('rule-form'), formError = ib('rule-error');
  const name = ib('rule-name'), trigger = ib('rule-trigger');
  const conditionsBox = ib('conditions'), actionsBox = ib('actions');
  const addCondition = ib('add-condition'), addAction = ib('add-action');
  const tryChannel = ib('try-channel'), tryResult = ib('try-result');
  let rules = [], members = [], teams = [], channels = [], attributes = [];
  let editing = null, conditions = [], actions = [];

  trigger.replaceChildren(...TRIGGERS.map((x) => { const o = el('option', null, t(`trigger-${x}`)); o.value = x; return o; }));

  // A full workspace answers 409 `conflict`, which the console's own text reads otherwise.
  const failed = (r, fallback) => (r.data && r.data.error && r.data.error.code === 'conflict' ? t('rule-limit') : problem(r, fallback));
  const channelName = (id) => (channels.find((c) => c.id === id) || {}).name || t('unknown-channel');
  function named(kind, id) {
    const found = (kind === 'user' ? members : teams).find((x) => x.id === id);
    return found ? found.name : t(kind === 'user' ? 'unknown-member' : 'unknown-team');
  }

  // The list

  function button(hook, text, label, onClick, cls = 'ghost') {
    const b = el('button', cls, text);
    b.type = 'button';
    b.dataset.ib = hook;
    if (label) b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  }

  function summary(rule) {
    const when = rule.conditions.map((c) => conditionWords(t, c, channelName)).join('; ') || t('always');
    const then = rule.actions.map((a) => actionWords(t, a, named)).join(', ');
    return t('rule-summary', { when, then });
  }

  function row(rule, index) {
    const li = el('li', 'rule');
    Object.assign(li.dataset, { ib: 'rule', id: rule.id, enabled: String(rule.enabled) });
    const info = el('div', 'info');
    const title = el('strong', null, rule.name);
    title.dataset.ib = 'rule-title';
    const when = el('span', 'kind', t(`trigger-${rule.trigger}`));
    when.dataset.ib = 'rule-when';
    const what = el('small', 'muted', summary(rule));
    what.dataset.ib = 'rule-summary';
    const changed = el('small', 'muted', t('rule-changed', { t: stamp(rule.updated_at) }));
    info.append(title, when, what, changed);

    const on = el('input');
    Object.assign(on, { type: 'checkbox', checked: rule.enabled });
    on.dataset.ib = 'rule-enabled';
    on.setAttribute('aria-label', t('rule-enabled-of', { name: rule.name }));
    on.addEventListener('change', async () => {
      const answer = await save('PATCH', `/api/automation-rules/${rule.id}`, { enabled: on.checked });
      if (!answer) { on.checked = rule.enabled; return; }
      rule.enabled = answer.enabled;
      li.dataset.enabled = String(rule.enabled);
    });
    const toggle = el('label', 'check');
    toggle.append(on, el('span', null, t('rule-enabled')));
    const up = button('rule-up', '↑', t('rule-up', { name: rule.name }), () => move(index, -1, 'rule-up'));
    const down = button('rule-down', '↓', t('rule-down', { name: rule.name }), () => move(index, 1, 'rule-down'));
    up.disabled = index === 0;
    down.disabled = index === rules.length - 1;
    const edit = button('rule-edit', t('rule-edit'), t('rule-edit-of', { name: rule.name }), () => open(rule));
    const remove = button('rule-delete', t('rule-delete'), t('rule-delete-of', { name: rule.name }), () => drop(rule), 'ghost danger-ghost');
    const controls = el('div', 'actions');
    controls.append(toggle, up, down, edit, remove);
    li.append(info, controls);
    return li;
  }

  async function save(method, url, body) {
    say(error, '');
    say(done, '');
    const r = await api(method, url, body);
    if (!r.ok) { say(error, failed(r, 'could-not-change')); return null; }
    return r.data || {};
  }

  /* Moves a rule one place: one PATCH of its new place in the order; the hub numbers the
   * others afresh in the same transaction. */
  async function move(index, by, hook) {
    const moved = rules[index];
    await save('PATCH', `/api/automation-rules/${moved.id}`, { position: index + by });
    await load();
    const li = list.querySelector(`[data-id="${moved.id}"]`);
    if (li) (ib(hook, li).disabled ? ib(hook === 'rule-up' ? 'rule-down' : 'rule-up', li) : ib(hook, li)).focus();
  }

  async function drop(rule) {
    if (!await confirmDialog(t('rule-delete-title', { name: rule.name }), t('rule-delete-text'), t('rule-delete'))) return;
    if (await save('DELETE', `/api/automation-rules/${rule.id}`) === null) return;
    if (editing && editing.id === rule.id) close(opener);
    say(done, t('rule-deleted', { name: rule.name }));
    await load();
    opener.focus();
  }

  async function load() {
    say(error, '');
    const answers = await Promise.all(['/api/automation-rules', '/api/members', '/api/teams', '/api/channels', '/api/attributes'].map((u) => api('GET', u)));
    const bad = answers.find((r) => !r.ok);
    if (bad) return say(error, problem(bad, 'could-not-load'));
    [rules, members, teams, channels, attributes] = answers.map((r) => r.data.items);
    list.replaceChildren(...rules.map(row));
    empty.hidden = rules.length > 0;
    fillTryChannels();
  }

  // The editor

  const rowCtx = {
    t,
    get channels() { return channels; },
    get members() { return members; },
    get teams() { return teams; },
    get attributes() { return attributes; },
    onChange: () => fit(),
  };

  function fit() {
    conditions.forEach((c) => c.fitTrigger(trigger.value));
    const types = actions.map((a) => a.type());
    actions.forEach((a, i) => a.fitOthers(types.filter((_, j) => j !== i), trigger.value));
    addCondition.disabled = conditions.length >= MAX_CONDITIONS;
    addAction.disabled = actions.length >= MAX_ACTIONS || !ACTIONS.some((x) => !clashes(x, types));
  }

  function put(rows, box, made, at) {
    rows.push(made);
    box.append(made.node);
    fit();
    if (at) made.focus();
  }

  /* Takes a row out, and gives the focus to the next one, or the add button. */
  function take(rows, box, gone, add) {
    const index = rows.indexOf(gone);
    rows.splice(index, 1);
    gone.node.remove();
    fit();
    (rows[index] || rows[index - 1] || { focus: () => add.focus() }).focus();
  }

  function newCondition(condition, focus) {
    const made = conditionRow({ ...rowCtx, onRemove: (r) => take(conditions, conditionsBox, r, addCondition) }, condition);
    put(conditions, conditionsBox, made, focus);
  }

  function newAction(action, focus) {
    const made = actionRow({ ...rowCtx, onRemove: (r) => take(actions, actionsBox, r, addAction) }, action);
    put(actions, actionsBox, made, focus);
  }

  function open(rule) {
    editing = rule;
    say(formError, '');
    say(done, '');
    ib('rule-form-title').textContent = rule ? t('rule-edit-title', { name: rule.name }) : t('rule-new-title');
    name.value = rule ? rule.name : '';
    trigger.value = rule ? rule.trigger : TRIGGERS[0];
    conditions = [];
    actions = [];
    conditionsBox.replaceChildren();
    actionsBox.replaceChildren();
    (rule ? rule.conditions : []).forEach((c) => newCondition(c));
    (rule ? rule.actions : [{ type: 'add_label' }]).forEach((a) => newAction(a));
    tryResult.replaceChildren();
    fit();
    form.hidden = false;
    opener.setAttribute('aria-expanded', 'true');
    name.focus();
  }

  function close(focus) {
    form.hidden = true;
    editing = null;
    opener.setAttribute('aria-expanded', 'false');
    if (focus) focus.focus();
  }

  /* The rule as the form has it, or null after saying what is missing. */
  function body(forTrying) {
    say(formError, '');
    form.querySelectorAll('[aria-invalid]').forEach((n) => n.removeAttribute('aria-invalid'));
    const stop = (key, control) => {
      say(formError, t(key));
      if (control) { control.setAttribute('aria-invalid', 'true'); control.focus(); }
      return null;
    };
    const title = name.value.trim();
    if (!title && !forTrying) return stop('rule-need-name', name);
    for (const c of conditions) {
      const missing = c.problem(trigger.value);
      if (missing) return stop(...missing);
    }
    if (!actions.length) return stop('rule-need-action', addAction);
    for (const a of actions) {
      const missing = a.problem(trigger.value);
      if (missing) return stop(...missing);
    }
    return {
      name: title || t('rule-untitled'),
      trigger: trigger.value,
      conditions: conditions.map((c) => c.read()),
      actions: actions.map((a) => a.read()),
    };
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const rule = body(false);
    if (!rule) return;
    const submit = ib('save-rule');
    submit.disabled = true;
    try {
      const r = editing
        ? await api('PATCH', `/api/automation-rules/${editing.id}`, rule)
        : await api('POST', '/api/automation-rules', rule);
      if (!r.ok) return say(formError, failed(r, 'could-not-save'));
      close(null);
      await load();
      say(done, t('rule-saved', { name: r.data.name }));
      const li = list.querySelector(`[data-id="${r.data.id}"]`);
      (li ? ib('rule-edit', li) : opener).focus();
    } finally {
      submit.disabled = false;
    }
  });

  opener.addEventListener('click', () => (form.hidden || editing ? open(null) : close(opener)));
  ib('cancel-rule').addEventListener('click', () => {
    const li = editing && list.querySelector(`[data-id="${editing.id}"]`);
    close(li ? ib('rule-edit', li) : opener);
  });
  trigger.addEventListener('change', fit);
  addCondition.addEventListener('click', () => newCondition({}, true));
  addAction.addEventListener('click', () => {
    const types = actions.map((a) => a.type());
    // The first kind of action not in the rule yet, else one more label.
    const next = ACTIONS.find((x) => !types.includes(x) && !clashes(x, types)) || 'add_label';
    newAction({ type: next }, true);
  });

  // Trying the rule on a made-up message

  /* The sample's channel: the first one at first, then whichever the admin chose. */
  function fillTryChannels() {
    const first = !tryChannel.options.length, chosen = tryChannel.value;
    const live = channels.filter((c) => c.status !== 'disconnected');
    const options = live.map((c) => { const o = el('option', null, `${c.name} (${t(`kind-${c.kind}`)})`); o.value = c.id; return o; });
    const none = el('option', null, t('try-no-channel'));
    none.value = '';
    tryChannel.replaceChildren(...options, none);
    if (!first && [...tryChannel.options].some((o) => o.value === chosen)) tryChannel.value = chosen;
  }

  /* What the server says the rule would change, in words. */
  function changesWords(changes) {
    const said = [];
    if (changes.assignee_id) said.push(t('do-assign_agent', { name: named('user', changes.assignee_id) }));
    if (changes.team_id) said.push(t('do-assign_team', { name: named('team', changes.team_id) }));
    (changes.labels_add || []).forEach((label) => said.push(t('do-add_label', { label })));
    if (changes.priority) said.push(t('do-set_priority', { priority: t(`priority-${changes.priority}`) }));
    if (changes.status === 'resolved') said.push(t('do-resolve'));
    if (changes.status === 'snoozed') said.push(t('do-snooze-until', { time: stamp(changes.snoozed_until) }));
    return said;
  }

  function showTried(answer) {
    const verdict = el('p', 'verdict', t(answer.matched ? 'try-matches' : 'try-no-match'));
    Object.assign(verdict.dataset, { ib: 'try-verdict', matched: String(answer.matched) });
    const outcomes = el('ul', 'outcomes');
    outcomes.setAttribute('aria-label', t('try-conditions'));
    answer.conditions.forEach((c) => {
      const li = el('li');
      Object.assign(li.dataset, { ib: 'try-condition', holds: String(c.holds) });
      const mark = el('span', 'mark', c.holds ? '✓' : '✗');
      mark.setAttribute('aria-hidden', 'true');
      li.append(mark, el('span', 'sr', t(c.holds ? 'try-holds' : 'try-fails')), el('span', null, conditionWords(t, c, channelName)));
      outcomes.append(li);
    });
    const parts = [verdict];
    if (answer.conditions.length) parts.push(outcomes);
    else parts.push(el('p', 'muted', t('try-always')));
    if (answer.matched) {
      const said = changesWords(answer.changes);
      if (answer.reply !== null) said.push(t('do-send_reply'));
      const does = el('p', null, said.length ? t('try-would', { what: said.join(', ') }) : t('try-nothing'));
      does.dataset.ib = 'try-does';
      parts.push(does);
      if (answer.reply !== null) {
        const reply = el('blockquote', 'reply', answer.reply);
        reply.dataset.ib = 'try-reply';
        parts.push(reply);
      }
    }
    tryResult.replaceChildren(...parts);
  }

  ib('try-rule').addEventListener('click', async () => {
    const rule = body(true);
    if (!rule) return;
    tryResult.replaceChildren();
    const sample = {
      text: ib('try-text').value,
      contact_name: ib('try-name').value.trim(),
      contact_email: ib('try-email').value.trim(),
      labels: split(ib('try-labels').value.toLowerCase()),
    };
    if (tryChannel.value) sample.channel_id = tryChannel.value;
    // key=value pairs, each to the record its attribute is on.
    split(ib('try-attributes').value).forEach((pair) => {
      const [key, ...rest] = pair.split('=');
      const found = attributes.find((a) => a.key === key.trim());
      const value = rest.join('=').trim();
      if (!found || !value) return;
      const box = found.applies_to === 'contact' ? 'contact_attributes' : 'conversation_attributes';
      (sample[box] = sample[box] || {})[found.key] = value;
    });
    const r = await api('POST', '/api/automation-rules/try', { rule, sample });
    if (!r.ok) return say(formError, failed(r, 'could-not-load'));
    showTried(r.data);
  });

  return { load };
}
