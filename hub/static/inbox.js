/* SosyoCRM agent inbox: plain ES modules, no framework, no build step. This one signs in and
 * out, boots the page and takes the keyboard shortcuts; the page's parts are its own modules:
 *   inbox-state.js     shared state, strings and small helpers
 *   inbox-list.js      the conversation list, filters and the queue
 *   inbox-thread.js    the open conversation: header, messages, read marks
 *   inbox-actions.js   status, snooze, assignee, team, priority and labels
 *   inbox-composer.js  reply or note, the messaging window, saved replies, typing, presence
 *   inbox-upload.js    files in the composer (button, drop, paste), sent as multipart
 *   inbox-templates.js WhatsApp templates, offered when the 24-hour window is closed
 *   inbox-contact.js   the contact panel
 *   inbox-search.js    search with filters, matches marked (search-highlight.js)
 *   inbox-comments.js  hide, show or delete a public comment
 *   inbox-live.js      the realtime socket (hubsocket.js, shared with the widget) and its events
 *   password.js        the "Change password" dialog
 *   inbox-sessions.js  where this agent is signed in; sign the other sessions out
 *   inbox-workflow.js  the Pending action, the filters' counts, emoji, single-key shortcuts
 *   inbox-bulk.js      checkboxes on the list and actions on the selection
 *   inbox-notify.js    unread count in the title and icon, sounds, desktop and push notifications
 *   inbox-mentions.js  @mentions in notes: the member menu, highlights, the Mentions filter
 * The header's workspace picker (shown to a member of more than one) moves the session to
 * another workspace (POST /api/auth/switch) and reloads the page into it.
 * REST under /api (cookie session + X-CSRF-Token on writes), realtime protocol v2 on /ws/agent
 * (hubsocket.js).
 *
 * Consistency: the list is loaded over REST first and the socket resumes from the position it
 * answers, so nothing the list could not show yet is missed; the list and the open thread are
 * reloaded after every welcome that is not a resume (no position, or after 4409 "cursor too
 * old"); live events are merged in by id, so a message is never shown twice. Messages seen
 * live are also kept per conversation (last 50), because the database may lag the stream by a
 * moment (the persist worker).
 * Text from messages and names only ever reaches the page through textContent.
 */
import { api, el, errorText, languagePicker, session } from './common.js';
import {
  $, appView, conversations, flash, listEl, members, pane, pending, placeholder, presence, reads,
  readSent, recent, rows, state, t,
} from './inbox-state.js';
import './inbox-comments.js';
import './inbox-sessions.js';
import './inbox-workflow.js';
import './inbox-bulk.js';
import { forgetPush, loadPrefs } from './inbox-notify.js';
import { results } from './inbox-search.js';
import { loadChannels, loadMembers, loadTeams, renderList } from './inbox-list.js';
import { connect, disconnect } from './inbox-live.js';
import { loadAttributes } from './inbox-attributes.js';
import { openConversation } from './inbox-thread.js';
import { passwordDialog } from './password.js';
import { profileDialog } from './profile.js';
import { codeStep, enrol, securityPanel } from './twofactor.js';

const loginView = document.getElementById('login');
const loginError = $('login-error'), email = $('login-email'), password = $('login-password');
const loginForm = $('login-form'), loginStep = $('login-step');

function showLogin(message) {
  appView.hidden = true;
  loginView.hidden = false;
  loginStep.hidden = true;
  loginStep.replaceChildren();
  loginForm.hidden = false;
  loginError.textContent = message || '';
  loginError.hidden = !message;
  (message && email.value ? password : email).focus();
}

function start(data) {
  session.set(data.csrf_token);
  state.me = data.user;
  state.active = true;
  $('me').textContent = state.me.name || t('agent');
  $('admin-link').hidden = state.me.role !== 'admin';
  loginView.hidden = true;
  appView.hidden = false;
  renderList();
  loadChannels();
  loadMembers();
  loadTeams();
  loadAttributes();
  loadWorkspaces(data.workspaces);
  loadPrefs();
  connect();
}

/* The picker, when this user is a member of more than one workspace. */
async function loadWorkspaces(known) {
  let mine = known;
  if (!mine) {
    const r = await api('GET', '/api/me');
    mine = (r.ok && r.data.workspaces) || [];
  }
  const select = $('workspace');
  select.replaceChildren(...mine.map((w) => {
    const option = el('option', null, w.name);
    option.value = w.id;
    option.selected = w.id === state.me.workspace_id;
    return option;
  }));
  $('workspace-pick').hidden = mine.length < 2;
}

$('workspace').addEventListener('change', async () => {
  const select = $('workspace');
  const back = () => location.reload(); // this session goes on until the switch completes
  select.disabled = true;
  try {
    const r = await api('POST', '/api/auth/switch', { workspace_id: select.value });
    if (r.ok && r.data.ticket) { stop(); return secondStep(r.data, { onDone: back, onBack: back }); }
    if (r.ok) return location.reload();
    select.value = state.me.workspace_id;
    flash(t('switch-failed', { why: errorText(r, r.status) }));
  } catch (err) {
    select.value = state.me.workspace_id;
    flash(t('unreachable'));
  } finally {
    select.disabled = false;
  }
});

function stop() {
  state.active = false; state.loaded = false; state.openId = null; state.me = null;
  session.clear();
  disconnect();
  [conversations, rows, recent, pending, readSent, reads, members, presence].forEach((m) => m.clear());
  listEl.replaceChildren();
  pane.hidden = true;
  placeholder.hidden = false;
}

session.onExpired(() => { if (state.active) { stop(); showLogin(t('session-ended')); } });

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!email.value.trim() || !password.value) return showLogin(t('enter-credentials'));
  loginError.hidden = true;
  $('login-submit').disabled = true;
  try {
    const r = await api('POST', '/api/auth/login', { email: email.value.trim(), password: password.value });
    if (!r.ok) return showLogin(errorText(r, t('sign-in-failed')));
    password.value = '';
    if (r.data.ticket) return secondStep(r.data);
    start(r.data);
  } catch (err) {
    showLogin(t('unreachable'));
  } finally {
    $('login-submit').disabled = false;
  }
});

/* After the password: a code (two-factor on), or enrolment (an admin whose workspace requires
 * it); either ends in a session. */
function secondStep(challenge, ways = {}) {
  appView.hidden = true;
  loginView.hidden = false;
  loginForm.hidden = true;
  loginStep.hidden = false;
  const done = ways.onDone || ((data) => { loginStep.hidden = true; loginStep.replaceChildren(); start(data); });
  const back = ways.onBack || showLogin;
  if (challenge.two_factor_setup_required) {
    enrol(loginStep, { ticket: challenge.ticket, required: true, onDone: done, onBack: back });
  } else {
    codeStep(loginStep, challenge.ticket, { onSession: done, onBack: back });
  }
}

$('security').addEventListener('click', () => {
  $('security-dialog').showModal();
  securityPanel($('security-body'));
});

$('logout').addEventListener('click', async () => {
  const pushEndpoint = await forgetPush().catch(() => null);
  try { await api('POST', '/api/auth/logout', pushEndpoint ? { push_endpoint: pushEndpoint } : undefined); } catch (e) { /* the cookie expires anyway */ }
  stop();
  showLogin();
});
languagePicker($('language'));
passwordDialog(t);
profileDialog($('profile-open'), { onName: (name) => { $('me').textContent = name; } });

// Keyboard: "/" searches, Alt+↑/↓ moves between conversations, Escape closes what is open.
document.addEventListener('keydown', (e) => {
  if (!state.active) return;
  const typingInField = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
  if (e.key === '/' && !typingInField) { e.preventDefault(); $('search').focus(); return; }
  if (e.altKey && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
    e.preventDefault();
    const ids = [...listEl.querySelectorAll('[data-ib=conversation]')].map((b) => b.dataset.id);
    const at = ids.indexOf(state.openId);
    const next = ids[Math.min(ids.length - 1, Math.max(0, at + (e.key === 'ArrowDown' ? 1 : -1)))];
    if (next) openConversation(next);
    return;
  }
  if (e.key === 'Escape') {
    if (document.querySelector('dialog[open]')) return; // the dialog closes itself
    if (!results.hidden) results.hidden = true;
    else if (!$('contact-panel').hidden) $('contact-panel').hidden = true;
    else if (!$('snooze-form').hidden) $('snooze-form').hidden = true;
    else appView.dataset.view = 'list';
  }
});

// Boot
api('GET', '/api/me').then((r) => (r.ok ? start(Object.assign({ csrf_token: r.data.csrf_token }, r.data)) : showLogin()),
  () => showLogin(t('unreachable')));
