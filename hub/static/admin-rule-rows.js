/* The rows of the Automation tab's rule editor: one condition (field, operator, values) or one
 * action (type and the value it needs), each a small object around its DOM node that reads
 * back what the admin chose and says what is missing. Also the words for a condition and an
 * action, shared by the list of rules and the "Try it" result. */
import { el } from './common.js';

export const FIELDS = ['text', 'contact_name', 'contact_email', 'label', 'channel', 'channel_kind', 'business_hours', 'post', 'conversation_attribute', 'contact_attribute'];
const ATTRIBUTE_OPS = ['equals', 'contains', 'greater', 'less', 'is_set', 'not_set'];
const NO_VALUES = ['is_set', 'not_set'];
const isAttribute = (name) => name.endsWith('_attribute');
const OPS = {
  text: ['contains', 'not_contains'], contact_name: ['contains', 'not_contains'],
  contact_email: ['contains', 'not_contains'], label: ['in', 'not_in'],
  channel: ['in', 'not_in'], channel_kind: ['in', 'not_in'], business_hours: ['open', 'closed'],
  post: ['in', 'not_in'],
  conversation_attribute: ATTRIBUTE_OPS, contact_attribute: ATTRIBUTE_OPS,
};
const TYPED = ['text', 'contact_name', 'contact_email', 'label', 'post']; // values typed, comma-separated
export const COMMENT_TRIGGER = 'comment.created';
const COMMENT_ONLY = ['post', 'private_reply', 'public_reply']; // need the comment trigger
const REPLIES = ['send_reply', 'private_reply', 'public_reply']; // a text to send
export const KINDS = ['webchat', 'instagram', 'messenger', 'whatsapp', 'telegram'];
export const ACTIONS = ['add_label', 'set_priority', 'assign_agent', 'assign_team', 'send_reply', 'private_reply', 'public_reply', 'resolve', 'snooze'];
const SINGLE = ['assign_agent', 'assign_team', 'set_priority', 'send_reply', 'private_reply', 'public_reply', 'resolve', 'snooze'];
const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
export const MAX_SNOOZE_MINUTES = 30 * 24 * 60;

export const split = (text) => text.split(',').map((v) => v.trim()).filter(Boolean);
let made = 0; // for ids that tie a help text to its field

function select(options, value, label) {
  const node = el('select');
  node.setAttribute('aria-label', label);
  node.replaceChildren(...options.map(([key, text]) => { const o = el('option', null, text); o.value = key; return o; }));
  if (value !== undefined && options.some(([key]) => key === value)) node.value = value;
  return node;
}

function removeButton(label, onClick, hook) {
  const b = el('button', 'ghost danger-ghost', label.text);
  b.type = 'button';
  b.dataset.ib = hook;
  b.setAttribute('aria-label', label.aria);
  b.addEventListener('click', onClick);
  return b;
}

/* Check boxes for a list of [value, text], in a fieldset named by `legend`. */
function boxes(options, chosen, legend) {
  const set = el('fieldset', 'checks inline-checks');
  set.dataset.ib = 'condition-values';
  set.append(el('legend', 'sr', legend));
  options.forEach(([value, text]) => {
    const box = el('input');
    Object.assign(box, { type: 'checkbox', value, checked: chosen.includes(value) });
    box.dataset.ib = 'condition-value';
    const label = el('label', 'check');
    label.append(box, el('span', null, text));
    set.append(label);
  });
  return set;
}

/* A custom attribute condition's picker: the workspace's attributes of that kind of record
 * (`ctx.attributes`), and one the rule names that is gone, as such. */
function attributePicker(ctx, subject, key) {
  const mine = (ctx.attributes || []).filter((a) => a.applies_to === subject).map((a) => [a.key, a.label]);
  const known = key && !mine.some(([k]) => k === key) ? [...mine, [key, key]] : mine;
  const node = select(known, key, ctx.t('condition-attribute'));
  node.dataset.ib = 'condition-key';
  return node;
}

/* A condition row. `ctx` has t, channels (current list), attributes and onRemove(row). */
export function conditionRow(ctx, condition = {}) {
  const { t } = ctx;
  const node = el('div', 'rule-row condition');
  node.dataset.ib = 'condition';
  const field = select(FIELDS.map((f) => [f, t(`field-${f}`)]), condition.field || 'text', t('condition-field'));
  field.dataset.ib = 'condition-field';
  const op = el('select');
  op.dataset.ib = 'condition-op';
  op.setAttribute('aria-label', t('condition-op'));
  const slot = el('div', 'value');
  let values = condition.values || [];
  let control = null, picker = null;

  function channelOptions() {
    const known = ctx.channels.filter((c) => c.status !== 'disconnected' || values.includes(c.id));
    const gone = values.filter((id) => !ctx.channels.some((c) => c.id === id));
    return [...known.map((c) => [c.id, c.name]), ...gone.map((id) => [id, t('unknown-channel')])];
  }

  function show() {
    const name = field.value;
    op.replaceChildren(...OPS[name].map((o) => { const x = el('option', null, t(`op-${o}`)); x.value = o; return x; }));
    picker = isAttribute(name) ? attributePicker(ctx, name.replace('_attribute', ''), condition.key) : null;
    if (TYPED.includes(name) || picker) {
      control = el('input');
      Object.assign(control, { type: 'text', maxLength: 2000, autocomplete: 'off', value: values.join(', ') });
      control.dataset.ib = 'condition-values';
      control.setAttribute('aria-label', t('condition-values', { field: t(`field-${name}`) }));
      control.placeholder = t(picker ? 'values-placeholder-attribute' : `values-placeholder-${name}`);
    } else if (name === 'channel') {
      control = boxes(channelOptions(), values, t('condition-channels'));
    } else if (name === 'channel_kind') {
      control = boxes(KINDS.map((k) => [k, t(`kind-${k}`)]), values, t('condition-kinds'));
    } else {
      control = null;
    }
    slot.replaceChildren(...(picker ? [picker] : []), ...(control ? [control] : []));
    fitOp();
  }

  /* is set / is not set take no values: their box is hidden. */
  function fitOp() {
    if (picker && control) control.hidden = NO_VALUES.includes(op.value);
  }
  op.addEventListener('change', fitOp);

  function read() {
    const name = field.value;
    if (name === 'business_hours') return { field: name, op: op.value, values: [] };
    if (picker) {
      const given = NO_VALUES.includes(op.value) ? [] : split(control.value);
      return { field: name, key: picker.value, op: op.value, values: given };
    }
    if (control.tagName === 'INPUT') return { field: name, op: op.value, values: split(control.value) };
    return { field: name, op: op.value, values: [...control.querySelectorAll('input:checked')].map((b) => b.value) };
  }

  field.addEventListener('change', () => {
    // Typed values stay when the field changes to another typed one, e.g. name to e-mail.
    const typed = control && control.tagName === 'INPUT' ? split(control.value) : [];
    values = TYPED.includes(field.value) || isAttribute(field.value) ? typed : [];
    show();
    ctx.onChange();
  });
  show();
  if (OPS[field.value].includes(condition.op)) op.value = condition.op;
  fitOp();

  const remove = removeButton({ text: t('remove-row'), aria: t('remove-condition') }, () => ctx.onRemove(row), 'remove-condition');
  node.append(field, op, slot, remove);
  const row = {
    node,
    read,
    focus: () => field.focus(),
    /* What is missing, as [message key, control], or null. */
    problem(trigger) {
      const c = read();
      if (c.field === 'text' && trigger === 'conversation.resolved') return ['rule-text-resolved', field];
      if (COMMENT_ONLY.includes(c.field) && trigger !== COMMENT_TRIGGER) return ['rule-comment-only', field];
      if (picker && !c.key) return ['rule-need-attribute', picker];
      if (picker && NO_VALUES.includes(c.op)) return null;
      if (picker && ['greater', 'less'].includes(c.op) && c.values.length !== 1) return ['rule-need-one-value', control];
      if (c.field !== 'business_hours' && !c.values.length) {
        return ['rule-need-values', control.tagName === 'INPUT' ? control : control.querySelector('input') || field];
      }
      return null;
    },
    /* A text condition never holds on a resolution: not offered with that trigger. */
    fitTrigger(trigger) {
      field.querySelector('option[value=text]').disabled = trigger === 'conversation.resolved' && field.value !== 'text';
      field.querySelector('option[value=post]').disabled = trigger !== COMMENT_TRIGGER && field.value !== 'post';
    },
  };
  return row;
}

/* An action row. `ctx` has t, members, teams, onRemove(row) and onChange(). */
export function actionRow(ctx, action = {}) {
  const { t } = ctx;
  const node = el('div', 'rule-row action');
  node.dataset.ib = 'action';
  const type = select(ACTIONS.map((a) => [a, t(`action-${a}`)]), action.type || 'add_label', t('action-type'));
  type.dataset.ib = 'action-type';
  const slot = el('div', 'value');
  let control = null;

  /* Members or teams to pick from; one the rule names that is gone stays, as such, rather
   * than the rule silently naming someone else when saved. */
  function choices(items, id, unknown) {
    const known = items.map((x) => [x.id, x.name]);
    return id && !items.some((x) => x.id === id) ? [...known, [id, t(unknown)]] : known;
  }

  function show(given) {
    const kind = type.value;
    const parts = [];
    if (kind === 'assign_agent') {
      control = select(choices(ctx.members, given.user_id, 'unknown-member'), given.user_id, t('action-agent'));
    } else if (kind === 'assign_team') {
      control = select(choices(ctx.teams, given.team_id, 'unknown-team'), given.team_id, t('action-team'));
    } else if (kind === 'set_priority') {
      control = select(PRIORITIES.map((p) => [p, t(`priority-${p}`)]), given.priority || 'high', t('action-priority'));
    } else if (kind === 'add_label') {
      control = el('input');
      Object.assign(control, { type: 'text', maxLength: 50, autocomplete: 'off', value: given.label || '' });
      control.setAttribute('aria-label', t('action-label-name'));
    } else if (REPLIES.includes(kind)) {
      control = el('textarea');
      Object.assign(control, { rows: 3, maxLength: kind === 'send_reply' ? 4000 : 1000, value: given.text || '' });
      control.setAttribute('aria-label', t(kind === 'send_reply' ? 'action-reply' : `action-${kind}-text`));
      const help = el('p', 'help', t(kind === 'send_reply' ? 'help-rule-reply' : `help-rule-${kind}`));
      help.id = `rule-reply-help-${++made}`;
      control.setAttribute('aria-describedby', help.id);
      parts.push(help);
    } else if (kind === 'snooze') {
      control = el('input');
      Object.assign(control, { type: 'number', min: '1', max: String(MAX_SNOOZE_MINUTES), step: '1', inputMode: 'numeric' });
      control.value = given.minutes ? String(given.minutes) : '60';
      control.setAttribute('aria-label', t('action-minutes'));
      parts.push(el('span', 'muted unit', t('minutes')));
    } else {
      control = null;
    }
    if (control) control.dataset.ib = 'action-value';
    slot.replaceChildren(...(control ? [control] : []), ...parts);
  }

  function read() {
    const kind = type.value;
    const value = control ? control.value.trim() : '';
    if (kind === 'assign_agent') return { type: kind, user_id: value };
    if (kind === 'assign_team') return { type: kind, team_id: value };
    if (kind === 'set_priority') return { type: kind, priority: value };
    if (kind === 'add_label') return { type: kind, label: value.toLowerCase() };
    if (REPLIES.includes(kind)) return { type: kind, text: control.value };
    if (kind === 'snooze') return { type: kind, minutes: Number(value) };
    return { type: kind };
  }

  type.addEventListener('change', () => { show({}); ctx.onChange(); });
  show(action);
  const remove = removeButton({ text: t('remove-row'), aria: t('remove-action') }, () => ctx.onRemove(row), 'remove-action');
  node.append(type, slot, remove);
  const row = {
    node,
    read,
    focus: () => type.focus(),
    type: () => type.value,
    problem(trigger) {
      const a = read();
      if (COMMENT_ONLY.includes(a.type) && trigger !== COMMENT_TRIGGER) return ['rule-comment-only', type];
      if (a.type === 'send_reply' && trigger === COMMENT_TRIGGER) return ['rule-comment-reply', type];
      const empty = {
        assign_agent: 'rule-need-member', assign_team: 'rule-need-team', add_label: 'rule-need-label',
        send_reply: 'rule-need-reply', private_reply: 'rule-need-reply', public_reply: 'rule-need-reply',
      };
      if (a.type in empty && !String(a.user_id || a.team_id || a.label || a.text || '').trim()) return [empty[a.type], control || type];
      if (a.type === 'snooze' && !(Number.isInteger(a.minutes) && a.minutes >= 1 && a.minutes <= MAX_SNOOZE_MINUTES)) {
        return ['rule-snooze-invalid', control];
      }
      return null;
    },
    /* One of each, but any number of labels; resolve and snooze exclude each other. */
    fitOthers(others, trigger) {
      [...type.options].forEach((o) => {
        const misfit = (COMMENT_ONLY.includes(o.value) && trigger !== COMMENT_TRIGGER) || (o.value === 'send_reply' && trigger === COMMENT_TRIGGER);
        o.disabled = o.value !== type.value && (clashes(o.value, others) || misfit);
      });
    },
  };
  return row;
}

export function clashes(kind, others) {
  return (SINGLE.includes(kind) && others.includes(kind))
    || (kind === 'resolve' && others.includes('snooze')) || (kind === 'snooze' && others.includes('resolve'));
}

/* A condition in words, e.g. "Message text contains: refund". */
export function conditionWords(t, c, channelName) {
  if (c.field === 'business_hours') return t(`cond-hours-${c.op}`);
  if (isAttribute(c.field)) {
    const what = `${t(`field-${c.field}`)} ${c.key}`;
    return NO_VALUES.includes(c.op) ? `${what} ${t(`op-${c.op}`)}` : t('cond-words', { field: what, op: t(`op-${c.op}`), values: c.values.join(', ') });
  }
  const field = t(`field-${c.field}`), op = t(`op-${c.op}`);
  const names = c.values.map((v) => (c.field === 'channel' ? channelName(v) : c.field === 'channel_kind' ? t(`kind-${v}`) : v));
  return t('cond-words', { field, op, values: names.join(', ') });
}

/* An action in words, e.g. "add the label refund". `name(kind, id)` names a member or team. */
export function actionWords(t, a, name) {
  if (a.type === 'assign_agent') return t('do-assign_agent', { name: name('user', a.user_id) });
  if (a.type === 'assign_team') return t('do-assign_team', { name: name('team', a.team_id) });
  if (a.type === 'add_label') return t('do-add_label', { label: a.label });
  if (a.type === 'set_priority') return t('do-set_priority', { priority: t(`priority-${a.priority}`) });
  if (a.type === 'snooze') return t('do-snooze', { minutes: a.minutes });
  return t(`do-${a.type}`);
}
