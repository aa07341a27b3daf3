/* The Channels tab: health, connecting each kind (with what to paste where), disconnecting with
 * confirmation, and the web-chat widget's settings (look, pre-chat form, consent); its business
 * hours are admin-hours.js, its identity-verification secret admin-identity.js, a WhatsApp
 * channel's message templates admin-templates.js. */
import { api, el, ib, stamp } from './common.js';
import { hoursEditor } from './admin-hours.js';
import { identitySection } from './admin-identity.js';
import { templatesSection } from './admin-templates.js';
import { metaOnboarding } from './admin-facebook.js';

const META = ['messenger', 'instagram', 'whatsapp'];
const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);
const snippet = (key) => `<script src="${location.origin}/widget.js" data-channel="${key}" async></script>`;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

export function channelsPanel({ t, problem, confirmDialog, copyButton }) {
  const list = ib('channels'), empty = ib('no-channels'), notice = ib('channels-notice');
  const form = ib('connect-form'), kind = ib('connect-kind'), opener = ib('connect-open');
  const connectError = ib('connect-error'), submit = ib('connect-submit');
  const result = ib('connected'), copied = ib('copied');
  const panel = ib('webchat-panel'), settings = ib('webchat-form');
  const settingsError = ib('webchat-error'), saved = ib('webchat-saved');
  let editing = null;

  function say(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  // The list

  function row(c) {
    const li = el('li', 'channel');
    Object.assign(li.dataset, { ib: 'channel', id: c.id, kind: c.kind, status: c.status });
    const info = el('div', 'info');
    const name = el('strong', null, c.name);
    name.dataset.ib = 'channel-name';
    const badge = el('span', 'badge', t(`health-${c.status}`));
    Object.assign(badge.dataset, { ib: 'health', health: c.status });
    const last = el('small', 'muted', c.last_event_at ? t('last-event', { t: stamp(c.last_event_at) }) : t('no-events'));
    last.dataset.ib = 'last-event';
    if (c.last_event_at) last.title = c.last_event_at;
    info.append(name, el('span', 'kind', t(`kind-${c.kind}`)), badge, last);
    if (c.status === 'needs_reconnect') info.append(el('small', 'warn', t('needs-reconnect-hint')));
    const actions = el('div', 'actions');
    if (c.status !== 'disconnected') { // a web chat's look and hours; any channel's hours
      actions.append(button('channel-settings', t('settings'), () => openSettings(c.id)));
    }
    if (c.kind === 'instagram' && c.status === 'needs_reconnect') {
      actions.append(button('reconnect', t('reconnect'), () => instagramLogin(c.name, connectErrorOr(notice))));
    }
    let templates = null;
    if (c.kind === 'whatsapp' && c.status !== 'disconnected') {
      templates = templatesSection(c, { t, problem });
      actions.append(button('templates-open', t('templates'), () => templates.toggle()));
    }
    if (c.status !== 'disconnected') {
      const off = button('disconnect', t('disconnect'), () => disconnect(c));
      off.classList.add('danger-ghost');
      actions.append(off);
    }
    li.append(info, actions);
    if (templates) li.append(templates.box);
    return li;
  }

  function button(name, text, onClick) {
    const b = el('button', 'ghost', text);
    b.type = 'button';
    b.dataset.ib = name;
    b.addEventListener('click', onClick);
    return b;
  }

  async function load() {
    const r = await api('GET', '/api/channels/health');
    if (!r.ok) return say(notice, problem(r, 'could-not-load'));
    list.replaceChildren(...r.data.items.map(row));
    empty.hidden = r.data.items.length > 0;
    await meta.openPicker(); // back from Facebook Login with Pages to pick
  }

  /* The shared confirmation dialog, with the "also delete its data" box shown for this once. */
  async function disconnect(c) {
    const option = ib('confirm-option'), box = ib('confirm-option-box');
    ib('confirm-option-text').textContent = t('disconnect-delete-data');
    box.checked = false;
    option.hidden = false;
    const ok = await confirmDialog(t('disconnect-title', { name: c.name }), t('disconnect-text'), t('disconnect'));
    option.hidden = true;
    if (!ok) return;
    const deleteData = box.checked;
    box.checked = false;
    const r = await api('DELETE', `/api/channels/${c.id}${deleteData ? '?delete_data=true' : ''}`);
    say(notice, r.ok ? disconnectedText(c, r.data) : problem(r, 'could-not-change'));
    if (panel.dataset.id === c.id) closeSettings(false);
    await load();
  }

  function disconnectedText(c, answer) {
    const parts = [t('disconnected-notice', { name: c.name })];
    if (answer.unsubscribed === false) parts.push(t('not-unsubscribed', { note: answer.unsubscribe_note || '' }));
    if (answer.data_deletion) parts.push(t('data-deletion-started'));
    return parts.join(' ');
  }

  // Connecting

  function showKind() {
    const k = kind.value;
    form.querySelectorAll('[data-kinds]').forEach((node) => { node.hidden = !node.dataset.kinds.split(' ').includes(k); });
    if (META.includes(k)) {
      ib('account-label').textContent = t(`account-${k}`);
      ib('help-account').textContent = t(`help-account-${k}`);
      ib('help-token').textContent = t(`help-token-${k}`);
    }
  }

  function openForm(open) {
    form.hidden = !open;
    opener.setAttribute('aria-expanded', String(open));
    if (open) {
      result.hidden = true;
      say(connectError, '');
      showKind();
      kind.focus();
    } else {
      form.reset();
      opener.focus();
    }
  }

  function body() {
    const k = kind.value, name = ib('connect-name').value.trim();
    if (!name) throw new Error(t('need-name'));
    if (k === 'webchat') return { kind: k, name, allowed_origins: lines(ib('connect-origins').value) };
    if (k === 'telegram') {
      const bot = ib('connect-bot').value.trim();
      if (!bot) throw new Error(t('need-bot'));
      return { kind: k, name, bot_token: bot };
    }
    const account = ib('connect-account').value.trim(), token = ib('connect-token').value.trim();
    if (!account || !token) throw new Error(t('need-account'));
    const out = { kind: k, name, account_id: account, access_token: token };
    const secret = ib('connect-secret').value.trim(), waba = ib('connect-waba').value.trim();
    if (secret) out.app_secret = secret;
    if (k === 'whatsapp' && waba) out.business_account_id = waba;
    return out;
  }

  function showResult(c) {
    const hook = c.webhook || {};
    ib('connected-title').textContent = t('connected-title', { name: c.name });
    let steps = 'steps-hosted';
    if (c.kind === 'webchat') steps = 'steps-webchat';
    else if (c.kind === 'telegram') steps = 'steps-telegram';
    else if (hook.verify_token) steps = 'steps-own-app';
    ib('connected-steps').textContent = t(steps);
    ib('url-row').hidden = !hook.url;
    ib('url-label').textContent = t(hook.hosted_app ? 'hosted-url' : 'webhook-url');
    ib('webhook-url').textContent = hook.url || '';
    const token = hook.verify_token || hook.secret_token || '';
    ib('token-row').hidden = !token;
    ib('token-label').textContent = t(hook.secret_token ? 'secret-token' : 'verify-token');
    ib('verify-token').textContent = token;
    ib('snippet-row').hidden = c.kind !== 'webchat';
    ib('snippet').textContent = c.public_key ? snippet(c.public_key) : '';
    copied.textContent = '';
    result.hidden = false;
    result.focus();
  }

  async function instagramLogin(name, report) {
    const r = await api('POST', '/api/channels/instagram/authorize', { name: name || 'Instagram' });
    if (r.ok && r.data.url && /^https?:\/\//.test(r.data.url)) {
      location.assign(r.data.url);
      return;
    }
    report(r.ok ? t('instagram-failed') : problem(r, 'instagram-failed'));
  }
  const connectErrorOr = (node) => (text) => say(node, text);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let payload;
    try {
      payload = body();
    } catch (err) {
      return say(connectError, err.message);
    }
    say(connectError, '');
    submit.disabled = true;
    submit.textContent = t('connecting');
    try {
      const r = await api('POST', '/api/channels', payload);
      if (!r.ok) return say(connectError, problem(r, 'could-not-save'));
      form.reset(); // the secrets typed in leave the page
      form.hidden = true;
      opener.setAttribute('aria-expanded', 'false');
      showResult(r.data);
      await load();
    } finally {
      submit.disabled = false;
      submit.textContent = t('connect');
    }
  });
  opener.addEventListener('click', () => openForm(form.hidden));
  ib('connect-cancel').addEventListener('click', () => openForm(false));
  kind.addEventListener('change', showKind);
  ib('instagram-login').addEventListener('click', () => instagramLogin(ib('connect-name').value.trim(), connectErrorOr(connectError)));
  const meta = metaOnboarding({ t, problem, say, notice, reload: () => load() });
  ib('facebook-login').addEventListener('click', () => meta.facebookLogin(connectErrorOr(connectError)));
  ib('whatsapp-signup').addEventListener('click', () => meta.whatsappSignup(ib('connect-name').value.trim(), connectErrorOr(connectError)));
  ib('connected-done').addEventListener('click', () => {
    result.hidden = true;
    ['webhook-url', 'verify-token', 'snippet'].forEach((n) => { ib(n).textContent = ''; });
    opener.focus();
  });
  copyButton(ib('copy-url'), ib('webhook-url'), copied);
  copyButton(ib('copy-token'), ib('verify-token'), copied);
  copyButton(ib('copy-snippet'), ib('snippet'), copied);

  // Web-chat settings

  const hours = hoursEditor({ t });
  const identity = identitySection({ t, problem, confirmDialog, copyButton, editing: () => editing });
  const prechat = ib('webchat-prechat'), prechatEmail = ib('webchat-prechat-email');

  function showPrechat() {
    prechatEmail.disabled = !prechat.checked;
  }

  function fillSettings(c) {
    const s = isObject(c.settings) ? c.settings : {};
    const webchat = c.kind === 'webchat';
    panel.querySelectorAll('.webchat-only').forEach((n) => { n.hidden = !webchat; });
    ib('webchat-title').textContent = t(webchat ? 'webchat-title' : 'channel-title', { name: c.name });
    ib('webchat-name').value = c.name;
    ib('webchat-widget-title').value = s.title || '';
    ib('webchat-greeting').value = s.greeting || '';
    ib('webchat-colour').value = s.colour || '#4f46e5';
    ib('webchat-locale').value = s.locale || 'en';
    ib('webchat-position').value = s.position === 'left' ? 'left' : 'right';
    const pre = isObject(s.prechat) ? s.prechat : {};
    prechat.checked = pre.enabled === true;
    prechatEmail.checked = pre.require_email === true;
    showPrechat();
    ib('webchat-consent').checked = s.consent_required === true;
    ib('webchat-visitor-info').checked = s.visitor_info !== false;
    hours.fill(s.hours);
    ib('webchat-origins').value = (c.allowed_origins || []).join('\n');
    ib('webchat-snippet').textContent = c.public_key ? snippet(c.public_key) : '';
  }

  async function openSettings(id) {
    const r = await api('GET', `/api/channels/${id}`);
    if (!r.ok) return say(notice, problem(r, 'could-not-load'));
    const c = r.data;
    editing = c;
    panel.dataset.id = c.id;
    fillSettings(c);
    say(settingsError, '');
    say(saved, '');
    identity.reset(c);
    panel.hidden = false;
    ib('webchat-name').focus();
  }

  function closeSettings(focusBack = true) {
    panel.hidden = true;
    editing = null;
    identity.reset(null); // a secret shown once leaves the page with the section
    if (!focusBack) return;
    const back = list.querySelector(`[data-id="${CSS.escape(panel.dataset.id || '')}"] [data-ib=channel-settings]`);
    if (back) back.focus();
  }

  settings.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!editing) return;
    say(saved, '');
    ['webchat-origins', 'webchat-timezone'].forEach((n) => ib(n).removeAttribute('aria-invalid'));
    let schedule;
    try {
      schedule = hours.read();
    } catch (err) {
      say(settingsError, err.message);
      if (err.focus) err.focus.focus();
      return;
    }
    const name = ib('webchat-name').value.trim() || editing.name;
    const patch = editing.kind !== 'webchat' ? { name, hours: schedule } : {
      name,
      allowed_origins: lines(ib('webchat-origins').value),
      settings: {
        title: ib('webchat-widget-title').value.trim() || null,
        greeting: ib('webchat-greeting').value.trim() || null,
        colour: ib('webchat-colour').value,
        locale: ib('webchat-locale').value,
        position: ib('webchat-position').value,
        prechat: { enabled: prechat.checked, require_email: prechatEmail.checked },
        consent_required: ib('webchat-consent').checked,
        visitor_info: ib('webchat-visitor-info').checked,
        hours: schedule,
      },
    };
    const r = await api('PATCH', `/api/channels/${editing.id}`, patch);
    if (!r.ok) {
      say(settingsError, problem(r, 'could-not-save'));
      const code = r.data && r.data.error && r.data.error.code;
      const field = { invalid_origin: 'webchat-origins', invalid_timezone: 'webchat-timezone' }[code];
      if (field) {
        ib(field).setAttribute('aria-invalid', 'true');
        ib(field).focus();
      }
      return;
    }
    say(settingsError, '');
    say(saved, t('saved'));
    editing = r.data;
    fillSettings(r.data); // as the hub stored it: origins normalized, hours as kept
    await load();
  });
  prechat.addEventListener('change', showPrechat);
  ib('webchat-close').addEventListener('click', () => closeSettings());
  copyButton(ib('copy-webchat-snippet'), ib('webchat-snippet'), saved);

  return { load };
}
