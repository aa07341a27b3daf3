/* The API tokens tab: bearer tokens for scripts and other systems (POST /api/tokens). A new
 * token is shown once, with a Copy button, and never again: the hub keeps only its hash.
 * Admins see and revoke every token of the workspace; a revoked one stops at once. */
import { api, el, ib, stamp } from './common.js';
import { button, cell, field, heading, input, line, say, table } from './admin-kit.js';

export function tokensPanel({ t, problem, confirmDialog, copyButton }) {
  const panel = ib('panel-tokens');
  const error = line('error', 'tokens-error', 'alert');
  const name = input({ maxlength: '200', autocomplete: 'off', required: '' });
  const form = el('form', 'box');
  form.noValidate = true;
  form.dataset.ib = 'token-form';
  form.setAttribute('aria-labelledby', 'token-new-title');
  const formError = line('error', 'token-form-error', 'alert');
  form.append(
    heading(3, t('token-new'), 'token-new-title'),
    field(t('token-name'), name, 'token-name'),
    el('p', 'help', t('help-token-name')),
    formError,
    button(t('token-create'), 'token-create', 'primary', 'submit'),
  );

  // The new token, once.
  const shown = el('section', 'box result');
  shown.dataset.ib = 'token-shown';
  shown.tabIndex = -1;
  shown.hidden = true;
  shown.setAttribute('aria-labelledby', 'token-shown-title');
  const value = el('output');
  value.id = 'token-value';
  value.dataset.ib = 'token-value';
  const copy = button(t('copy'), 'token-copy');
  const copied = line('muted', 'token-copied', 'status');
  const row = el('div', 'copyrow');
  const label = el('label', null, t('token-value'));
  label.htmlFor = 'token-value';
  const box = el('div', 'copy');
  box.append(value, copy);
  row.append(label, box, el('p', 'warn', t('token-once')));
  const done = button(t('done'), 'token-done', 'primary');
  shown.append(heading(3, t('token-made'), 'token-shown-title'), row, copied, done);
  copyButton(copy, value, copied);
  done.addEventListener('click', () => {
    value.textContent = '';
    shown.hidden = true;
    name.focus();
  });

  const [list, body] = table([t('token-name'), t('token-owner'), t('token-created'), t('token-state'), { text: t('actions'), sr: true }], 'tokens');
  const empty = el('p', 'muted', t('tokens-none'));
  empty.dataset.ib = 'tokens-empty';
  const head = el('div', 'head');
  head.append(heading(2, t('tokens')));
  panel.replaceChildren(
    head, el('p', 'help', t('help-tokens')), error, form, shown, heading(3, t('tokens-all')), list, empty,
  );

  let names = new Map();

  function tokenRow(token) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'token', id: token.id, name: token.name });
    const state = token.revoked_at ? t('token-revoked', { when: stamp(token.revoked_at) }) : t('token-active');
    const actions = el('td', 'row-actions');
    if (!token.revoked_at) {
      const revoke = button(t('revoke'), 'token-revoke', 'ghost danger-ghost');
      revoke.setAttribute('aria-label', `${t('revoke')}: ${token.name}`);
      revoke.addEventListener('click', () => revokeToken(token));
      actions.append(revoke);
    }
    const stateCell = cell(state, t('token-state'));
    stateCell.dataset.ib = 'token-state';
    tr.append(
      cell(token.name, t('token-name')),
      cell(names.get(token.user_id) || t('token-former'), t('token-owner')),
      cell(stamp(token.created_at), t('token-created')),
      stateCell,
      actions,
    );
    return tr;
  }

  async function load() {
    const [tokens, members] = await Promise.all([api('GET', '/api/tokens'), api('GET', '/api/members')]);
    if (members.ok) names = new Map(members.data.items.map((m) => [m.id, m.name]));
    if (!tokens.ok) return say(error, problem(tokens, 'could-not-load'));
    say(error, '');
    const items = [...tokens.data.items].reverse(); // newest first
    body.replaceChildren(...items.map(tokenRow));
    empty.hidden = items.length > 0;
  }

  async function revokeToken(token) {
    const ok = await confirmDialog(t('token-revoke-title', { name: token.name }), t('token-revoke-text'), t('revoke'));
    if (!ok) return;
    const r = await api('DELETE', `/api/tokens/${token.id}`);
    say(error, r.ok ? '' : problem(r, 'could-not-change'));
    await load();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const wanted = name.value.trim();
    if (!wanted) { name.focus(); return say(formError, t('token-need-name')); }
    say(formError, '');
    const r = await api('POST', '/api/tokens', { name: wanted });
    if (!r.ok) return say(formError, problem(r, 'could-not-save'));
    form.reset();
    value.textContent = r.data.token;
    say(copied, '');
    shown.hidden = false;
    shown.focus();
    await load();
  });

  return { load };
}
