/* SosyoCRM admin console: channels, members, routing (teams, capacities), automation rules, reports, integrations (outbound webhooks), the audit log, the workspace's retention, the
 * hub's status figures, API tokens, saved replies and privacy (exports, deletion requests); the
 * header's Profile dialog (profile.js) is the inbox's too.
 * Plain ES modules, no build step.
 * Admins only: the server refuses everything else with 403, and an agent who opens the page
 * sees "Admins only" and no data. Text from the server reaches the page through textContent. */
import { api, el, errorText, ib, languagePicker, session, translatePage, translator } from './common.js';
import adminStrings from './admin-strings.js';
import taskStrings from './admin-tasks-strings.js';
import { channelsPanel } from './admin-channels.js';
import { auditPanel, membersPanel } from './admin-people.js';
import { hooksPanel } from './admin-hooks.js';
import { reportsPanel } from './admin-reports.js';
import { routingPanel } from './admin-routing.js';
import { automationPanel } from './admin-automation.js';
import { attributesPanel } from './admin-attributes.js';
import { workspacePanel } from './admin-workspace.js';
import { statusPanel } from './admin-status.js';
import { tokensPanel } from './admin-tokens.js';
import { repliesPanel } from './admin-replies.js';
import { privacyPanel } from './admin-privacy.js';
import { profileDialog } from './profile.js';
import { codeStep, enrol, securityPanel } from './twofactor.js';

const strings = { en: { ...adminStrings.en, ...taskStrings.en }, tr: { ...adminStrings.tr, ...taskStrings.tr } };
const t = translator(strings);
const views = { login: document.getElementById('login'), forbidden: document.getElementById('forbidden'), app: document.getElementById('app') };
const loginForm = ib('login-form'), loginError = ib('login-error'), loginSubmit = ib('login-submit');
const email = ib('login-email'), password = ib('login-password'), loginStep = ib('login-step');
const TABS = ['channels', 'members', 'routing', 'automation', 'attributes', 'reports', 'hooks', 'workspace', 'tokens', 'replies', 'privacy', 'status', 'audit'];

function show(name) {
  Object.entries(views).forEach(([key, view]) => { view.hidden = key !== name; });
}

/* An error answer as text: known codes in the interface language, else the server's message. */
function problem(r, fallbackKey) {
  const code = r.data && r.data.error && r.data.error.code;
  if (code && strings.en[`err-${code}`]) return t(`err-${code}`);
  return errorText(r, t(fallbackKey));
}

/* The page's own confirmation dialog (never window.confirm); resolves true on OK. */
function confirmDialog(title, text, ok) {
  const dialog = ib('confirm-dialog');
  ib('confirm-title').textContent = title;
  ib('confirm-text').textContent = text;
  ib('confirm-ok').textContent = ok;
  dialog.returnValue = '';
  dialog.showModal();
  ib('confirm-cancel').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

/* Copies the text of `source` when `button` is pressed, and says so in `status`. */
function copyButton(button, source, status) {
  button.addEventListener('click', async () => {
    const text = source.textContent;
    status.hidden = false;
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = t('copied');
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      status.textContent = document.execCommand('copy') ? t('copied') : t('copy-failed');
    }
  });
}

const ctx = { t, me: null, problem, confirmDialog, copyButton, restart: () => boot() };
const panels = {
  channels: channelsPanel(ctx),
  members: membersPanel(ctx),
  routing: routingPanel(ctx),
  automation: automationPanel(ctx),
  attributes: attributesPanel(ctx),
  reports: reportsPanel(ctx),
  hooks: hooksPanel(ctx),
  audit: auditPanel(ctx),
  workspace: workspacePanel(ctx),
  status: statusPanel(ctx),
  tokens: tokensPanel(ctx),
  replies: repliesPanel(ctx),
  privacy: privacyPanel(ctx),
};

// Tabs: arrow keys move between them; the URL's hash keeps the open one across reloads.
function selectTab(name, focus = false) {
  if (!TABS.includes(name)) name = 'channels';
  TABS.forEach((tab) => {
    const button = ib(`tab-${tab}`);
    const on = tab === name;
    button.setAttribute('aria-selected', String(on));
    button.tabIndex = on ? 0 : -1;
    ib(`panel-${tab}`).hidden = !on;
    if (on && focus) button.focus();
  });
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  panels[name].load();
}

TABS.forEach((tab, index) => {
  const button = ib(`tab-${tab}`);
  button.addEventListener('click', () => selectTab(tab));
  button.addEventListener('keydown', (e) => {
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: TABS.length - 1 };
    if (!(e.key in moves)) return;
    e.preventDefault();
    selectTab(TABS[(moves[e.key] + TABS.length) % TABS.length], true);
  });
});

// Signing in and out

function showLogin(message) {
  session.clear();
  show('login');
  loginStep.hidden = true;
  loginStep.replaceChildren();
  loginForm.hidden = false;
  loginError.textContent = message || '';
  loginError.hidden = !message;
  (message && email.value ? password : email).focus();
}

function enter(data) {
  session.set(data.csrf_token);
  ctx.me = data.user;
  if (data.user.role !== 'admin') {
    show('forbidden');
    return;
  }
  ib('me').textContent = data.user.name || '';
  show('app');
  selectTab(location.hash.slice(1));
  workspaces(data.workspaces);
}

/* The header's picker, for a member of more than one workspace: switching ends this session
 * and begins one there (POST /api/auth/switch), then the page reloads into it. */
async function workspaces(known) {
  let mine = known;
  if (!mine) {
    const r = await api('GET', '/api/me');
    mine = (r.ok && r.data.workspaces) || [];
  }
  ib('workspace').replaceChildren(...mine.map((w) => {
    const option = el('option', null, w.name);
    option.value = w.id;
    option.selected = w.id === ctx.me.workspace_id;
    return option;
  }));
  ib('workspace-pick').hidden = mine.length < 2;
}

ib('workspace').addEventListener('change', async () => {
  const select = ib('workspace'), error = ib('workspace-error');
  const again = () => location.reload(); // this session goes on until the switch completes
  select.disabled = true;
  error.hidden = true;
  try {
    const r = await api('POST', '/api/auth/switch', { workspace_id: select.value });
    if (r.ok && r.data.ticket) { show('login'); return secondStep(r.data, { onDone: again, onBack: again }); }
    if (r.ok) return location.reload();
    select.value = ctx.me.workspace_id;
    error.textContent = t('switch-failed', { why: problem(r, 'cannot-sign-in') });
    error.hidden = false;
  } catch (err) {
    select.value = ctx.me.workspace_id;
    error.textContent = t('unreachable');
    error.hidden = false;
  } finally {
    select.disabled = false;
  }
});

async function boot() {
  let r;
  try {
    r = await api('GET', '/api/me');
  } catch (e) {
    return showLogin(t('unreachable'));
  }
  if (r.status === 401) return showLogin();
  if (!r.ok) return showLogin(problem(r, 'cannot-sign-in'));
  enter(r.data);
}

loginForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!email.value.trim() || !password.value) return showLogin(t('enter-credentials'));
  loginError.hidden = true;
  loginSubmit.disabled = true;
  try {
    const r = await api('POST', '/api/auth/login', { email: email.value.trim(), password: password.value });
    if (!r.ok) return showLogin(problem(r, 'cannot-sign-in'));
    password.value = '';
    if (r.data.ticket) return secondStep(r.data);
    enter(r.data);
  } catch (err) {
    showLogin(t('unreachable'));
  } finally {
    loginSubmit.disabled = false;
  }
});

/* After the password: a code (two-factor on), or enrolment (an admin whose workspace requires
 * it); either ends in a session. */
function secondStep(challenge, ways = {}) {
  loginForm.hidden = true;
  loginStep.hidden = false;
  const done = ways.onDone || ((data) => { loginStep.hidden = true; loginStep.replaceChildren(); enter(data); });
  const back = ways.onBack || showLogin;
  if (challenge.two_factor_setup_required) {
    enrol(loginStep, { ticket: challenge.ticket, required: true, onDone: done, onBack: back });
  } else {
    codeStep(loginStep, challenge.ticket, { onSession: done, onBack: back });
  }
}

profileDialog(ib('profile-open'), { onName: (name) => { ib('me').textContent = name; } });

ib('security').addEventListener('click', () => {
  ib('security-dialog').showModal();
  securityPanel(ib('security-body'));
});

async function logOut() {
  try { await api('POST', '/api/auth/logout'); } catch (e) { /* signed out locally anyway */ }
  showLogin();
}
ib('logout').addEventListener('click', logOut);
ib('forbidden-logout').addEventListener('click', logOut);

session.onExpired(() => showLogin(t('session-ended')));
translatePage(t);
languagePicker(ib('language'));
boot();
