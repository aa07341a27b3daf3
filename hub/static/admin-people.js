/* The Members tab (invite by e-mail, pending invitations with resend and revoke, change role,
 * remove, remove and delete the account's data) and the Audit log tab (who did what, when,
 * from which IP; filtered, newest first, a page at a time). */
import { api, el, ib, lang, stamp } from './common.js';

let members = []; // shared by both tabs: names for the audit log and its "Who" filter

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

function cell(text, label) {
  const td = el('td', null, text);
  if (label) td.dataset.label = label;
  return td;
}

function button(text, name, cls = 'ghost') {
  const b = el('button', cls, text);
  b.type = 'button';
  b.dataset.ib = name;
  return b;
}

async function loadMembers() {
  const r = await api('GET', '/api/members');
  if (r.ok) members = r.data.items;
  return r;
}

export function membersPanel(ctx) {
  const { t, problem, confirmDialog, restart } = ctx; // ctx.me is set once signed in
  const body = ib('members'), error = ib('members-error');
  const form = ib('member-form'), formError = ib('member-error'), added = ib('member-added');
  const invitations = ib('invitations'), invitationsError = ib('invitations-error');
  const isMe = (m) => Boolean(ctx.me) && m.id === ctx.me.user_id;

  function row(m) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'member', id: m.id, email: m.email });
    const mine = isMe(m);
    const name = cell(mine ? `${m.name} ${t('you')}` : m.name, t('name'));
    const role = el('select');
    role.dataset.ib = 'member-role';
    role.setAttribute('aria-label', t('role-of', { name: m.name }));
    ['agent', 'admin'].forEach((value) => {
      const option = el('option', null, t(`role-${value}`));
      option.value = value;
      role.append(option);
    });
    role.value = m.role;
    role.addEventListener('change', () => changeRole(m, role));
    const roleCell = el('td');
    roleCell.dataset.label = t('role');
    roleCell.append(role);
    const actions = el('td', 'row-actions');
    if (!mine) {
      const remove = button(t('remove'), 'member-remove', 'ghost danger-ghost');
      remove.setAttribute('aria-label', `${t('remove')}: ${m.name}`);
      remove.addEventListener('click', () => removeMember(m, false));
      const erase = button(t('remove-erase'), 'member-erase', 'ghost danger-ghost');
      erase.setAttribute('aria-label', `${t('remove-erase')}: ${m.name}`);
      erase.addEventListener('click', () => removeMember(m, true));
      const signOut = button(t('sign-out-member'), 'member-sign-out', 'ghost');
      signOut.setAttribute('aria-label', `${t('sign-out-member')}: ${m.name}`);
      signOut.addEventListener('click', () => signOutMember(m));
      actions.append(signOut, remove, erase);
    }
    if (!mine && m.two_factor) {
      const reset = el('button', 'ghost', t('reset-two-factor'));
      reset.type = 'button';
      reset.dataset.ib = 'member-reset-two-factor';
      reset.setAttribute('aria-label', `${t('reset-two-factor')}: ${m.name}`);
      reset.addEventListener('click', () => resetTwoFactor(m));
      actions.prepend(reset);
    }
    tr.append(name, cell(m.email, t('email')), roleCell, cell(stamp(m.created_at), t('joined')), actions);
    return tr;
  }

  function invitationRow(i) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'invitation', id: i.id, email: i.email });
    const expired = Date.parse(i.expires_at) <= Date.now();
    const expires = cell(expired ? t('expired') : stamp(i.expires_at), t('expires'));
    expires.title = i.expires_at;
    const actions = el('td', 'row-actions');
    const resend = button(t('resend'), 'invitation-resend');
    resend.setAttribute('aria-label', `${t('resend')}: ${i.email}`);
    resend.addEventListener('click', () => resendInvitation(i));
    const revoke = button(t('revoke'), 'invitation-revoke', 'ghost danger-ghost');
    revoke.setAttribute('aria-label', `${t('revoke')}: ${i.email}`);
    revoke.addEventListener('click', () => revokeInvitation(i));
    actions.append(resend, revoke);
    tr.append(cell(i.email, t('email')), cell(t(`role-${i.role}`), t('role')), expires, actions);
    return tr;
  }

  async function loadInvitations() {
    const r = await api('GET', '/api/invitations');
    if (!r.ok) return say(invitationsError, problem(r, 'could-not-load'));
    say(invitationsError, '');
    invitations.replaceChildren(...r.data.items.map(invitationRow));
    ib('invitations-box').hidden = r.data.items.length === 0;
  }

  async function load() {
    const r = await loadMembers();
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    body.replaceChildren(...members.map(row));
    await loadInvitations();
  }

  async function changeRole(m, select) {
    say(error, '');
    const r = await api('PATCH', `/api/members/${m.id}`, { role: select.value });
    if (!r.ok) {
      select.value = m.role;
      say(error, problem(r, 'could-not-change'));
      select.focus();
      return;
    }
    m.role = r.data.role;
    if (isMe(m) && m.role !== 'admin') restart(); // no longer an admin: the page says so
  }

  async function removeMember(m, erase) {
    const ok = erase
      ? await confirmDialog(t('erase-title', { name: m.name }), t('erase-text'), t('remove-erase'))
      : await confirmDialog(t('remove-title', { name: m.name }), t('remove-text'), t('remove'));
    if (!ok) return;
    const r = await api('DELETE', `/api/members/${m.id}${erase ? '?erase_account=true' : ''}`);
    say(error, r.ok ? '' : problem(r, 'could-not-change'));
    await load();
  }

  async function signOutMember(m) {
    say(added, '');
    const r = await api('POST', `/api/members/${m.id}/sign-out`);
    if (!r.ok) return say(error, problem(r, 'could-not-change'));
    say(added, t('member-signed-out', { name: m.name }));
  }

  async function resetTwoFactor(m) {
    const ok = await confirmDialog(t('reset-two-factor-title', { name: m.name }), t('reset-two-factor-text'), t('reset-two-factor'));
    if (!ok) return;
    const r = await api('DELETE', `/api/members/${m.id}/two-factor`);
    say(error, r.ok ? '' : problem(r, 'could-not-change'));
    await load();
  }

  async function resendInvitation(i) {
    say(added, '');
    const r = await api('POST', `/api/invitations/${i.id}/resend`, { language: lang() });
    if (!r.ok) return say(invitationsError, problem(r, 'could-not-change'));
    say(added, t('invitation-resent', { email: i.email }));
    await loadInvitations();
  }

  async function revokeInvitation(i) {
    const ok = await confirmDialog(t('revoke-title', { email: i.email }), t('revoke-text'), t('revoke'));
    if (!ok) return;
    const r = await api('DELETE', `/api/invitations/${i.id}`);
    say(invitationsError, r.ok ? '' : problem(r, 'could-not-change'));
    await loadInvitations();
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(added, '');
    const payload = {
      email: ib('member-email').value.trim(),
      role: ib('member-role-new').value,
      language: lang(),
    };
    if (!payload.email) { ib('member-email').focus(); return say(formError, t('need-email')); }
    const r = await api('POST', '/api/members', payload);
    if (!r.ok) return say(formError, problem(r, 'could-not-save'));
    say(formError, '');
    say(added, t('invitation-sent', { email: r.data.email }));
    form.reset();
    await loadInvitations();
  });

  return { load };
}

export function auditPanel({ t, problem }) {
  const body = ib('audit-rows'), more = ib('audit-more'), empty = ib('audit-empty'), error = ib('audit-error');
  const form = ib('audit-filter'), actor = ib('audit-actor');
  let cursor = null, seq = 0, channelNames = new Map();

  const when = (value) => (value ? new Date(value).toISOString() : null);

  function who(row) {
    if (row.actor_type === 'user') return row.actor_name || t('actor-unknown');
    return t(`actor-${row.actor_type}`);
  }

  function target(row) {
    if (!row.target_type) return '';
    let name = null;
    if (row.target_type === 'user') name = (members.find((m) => m.id === row.target_id) || {}).name;
    if (row.target_type === 'channel') name = channelNames.get(row.target_id);
    return `${t(`target-${row.target_type}`)}: ${name || (row.target_id || '').slice(0, 8)}`;
  }

  function row(r) {
    const tr = el('tr');
    Object.assign(tr.dataset, { ib: 'audit-row', action: r.action });
    const at = cell(stamp(r.at), t('when'));
    at.title = r.at;
    const action = el('td');
    action.dataset.label = t('action');
    const known = `a-${r.action}`;
    action.append(el('span', null, t(known) === known ? r.action : t(known)), el('code', null, r.action));
    const ip = cell(r.ip || '—', t('ip'));
    ip.dataset.ib = 'audit-ip';
    tr.append(at, cell(who(r), t('who')), action, cell(target(r), t('target')), ip);
    return tr;
  }

  async function page(reset) {
    const mine = ++seq;
    const params = new URLSearchParams({ limit: '50' });
    const filters = {
      action: ib('audit-action').value,
      actor_id: actor.value,
      since: when(ib('audit-since').value),
      until: when(ib('audit-until').value),
      cursor: reset ? null : cursor,
    };
    Object.entries(filters).forEach(([k, v]) => { if (v) params.set(k, v); });
    const r = await api('GET', `/api/audit?${params}`);
    if (mine !== seq) return; // a newer query is on its way
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    say(error, '');
    const rows = r.data.items.map(row);
    if (reset) body.replaceChildren(...rows);
    else body.append(...rows);
    cursor = r.data.next_cursor;
    more.hidden = !cursor;
    empty.hidden = body.children.length > 0;
  }

  async function load() {
    const [, channels] = await Promise.all([loadMembers(), api('GET', '/api/channels')]);
    if (channels.ok) channelNames = new Map(channels.data.items.map((c) => [c.id, c.name]));
    const chosen = actor.value;
    const anyone = actor.options[0];
    actor.replaceChildren(anyone, ...members.map((m) => {
      const option = el('option', null, `${m.name} <${m.email}>`);
      option.value = m.id;
      return option;
    }));
    actor.value = members.some((m) => m.id === chosen) ? chosen : '';
    await page(true);
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); page(true); });
  form.addEventListener('reset', () => setTimeout(() => page(true)));
  more.addEventListener('click', () => page(false));
  return { load };
}
