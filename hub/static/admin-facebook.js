/* Connecting Meta channels in the browser: Facebook Login for Business (the button that starts
 * it, and the picker of the Pages the admin signed in with, shown when the callback sends the
 * browser back with ?facebook_pages=<ticket>) and WhatsApp Embedded Signup (Meta's JavaScript
 * SDK launched with the hub's configuration; what it hands the page is posted to the hub). */
import { api, el, ib } from './common.js';

const SDK = 'https://connect.facebook.net/en_US/sdk.js';
const FACEBOOK = /^https:\/\/(www|web)\.facebook\.com$/;

export function metaOnboarding({ t, problem, say, notice, reload }) {
  const picker = ib('facebook-picker'), pages = ib('facebook-pages'), error = ib('facebook-error');
  let ticket = new URLSearchParams(location.search).get('facebook_pages');

  async function facebookLogin(report) {
    const r = await api('POST', '/api/channels/facebook/authorize');
    if (r.ok && r.data.url && /^https?:\/\//.test(r.data.url)) {
      location.assign(r.data.url);
      return;
    }
    report(r.ok ? t('facebook-failed') : problem(r, 'facebook-failed'));
  }

  function pick(kind, text, done) {
    const label = el('label', 'pick');
    const box = el('input');
    Object.assign(box, { type: 'checkbox', checked: done, disabled: done });
    Object.assign(box.dataset, { ib: `pick-${kind}`, kind });
    label.append(box, el('span', null, done ? `${text} · ${t('facebook-already')}` : text));
    return label;
  }

  function row(p) {
    const li = el('li', 'page');
    Object.assign(li.dataset, { ib: 'facebook-page', page: p.page_id });
    li.append(el('strong', null, p.name || p.page_id));
    li.append(pick('messenger', t('kind-messenger'), p.connected.includes('messenger')));
    if (p.instagram_account_id) {
      const who = p.instagram_username ? `@${p.instagram_username}` : p.instagram_account_id;
      li.append(pick('instagram', t('facebook-pick-instagram', { name: who }), p.connected.includes('instagram')));
    } else {
      li.append(el('small', 'muted', t('facebook-no-instagram')));
    }
    return li;
  }

  function close() {
    picker.hidden = true;
    pages.replaceChildren();
    ticket = null;
    history.replaceState(null, '', location.pathname + location.hash); // the ticket leaves the URL
  }

  async function openPicker() {
    if (!ticket) return;
    const r = await api('GET', `/api/channels/facebook/pages/${encodeURIComponent(ticket)}`);
    picker.hidden = false;
    if (!r.ok) {
      pages.replaceChildren();
      say(error, problem(r, 'facebook-expired'));
      return;
    }
    say(error, r.data.items.length ? '' : t('facebook-no-pages'));
    pages.replaceChildren(...r.data.items.map(row));
    picker.focus();
  }

  ib('facebook-connect').addEventListener('click', async () => {
    const picks = { messenger: [], instagram: [] };
    pages.querySelectorAll('input[type=checkbox]:checked:not(:disabled)').forEach((box) => {
      picks[box.dataset.kind].push(box.closest('[data-page]').dataset.page);
    });
    if (!picks.messenger.length && !picks.instagram.length) return say(error, t('facebook-pick-one'));
    const r = await api('POST', `/api/channels/facebook/pages/${encodeURIComponent(ticket)}`, picks);
    if (!r.ok) return say(error, problem(r, 'could-not-save'));
    close();
    say(notice, t('facebook-connected', { n: r.data.items.length }));
    await reload();
  });
  ib('facebook-cancel').addEventListener('click', close);

  // WhatsApp Embedded Signup

  function loadSdk(config) {
    return new Promise((resolve, reject) => {
      if (window.FB) return resolve(window.FB);
      window.fbAsyncInit = () => {
        window.FB.init({ appId: config.app_id, autoLogAppEvents: true, xfbml: false, version: config.sdk_version });
        resolve(window.FB);
      };
      const script = el('script');
      Object.assign(script, { src: SDK, async: true, defer: true, crossOrigin: 'anonymous' });
      script.addEventListener('error', () => reject(new Error(t('signup-no-sdk'))));
      document.head.append(script);
    });
  }

  async function whatsappSignup(name, report) {
    const config = await api('GET', '/api/channels/whatsapp/signup');
    if (!config.ok) return report(problem(config, 'signup-failed'));
    let session = null;
    const listen = (event) => { // the session info: which WABA and number were set up
      if (!FACEBOOK.test(event.origin)) return;
      try {
        const data = JSON.parse(event.data);
        if (data.type === 'WA_EMBEDDED_SIGNUP' && data.event === 'FINISH') session = data.data;
      } catch (e) { /* not the signup's message */ }
    };
    window.addEventListener('message', listen);
    try {
      const FB = await loadSdk(config.data);
      const answer = await new Promise((resolve) => FB.login(resolve, {
        config_id: config.data.config_id,
        response_type: 'code',
        override_default_response_type: true,
        extras: { setup: {}, sessionInfoVersion: '3' },
      }));
      const code = answer && answer.authResponse && answer.authResponse.code;
      if (!code || !session) return report(t('signup-cancelled'));
      const r = await api('POST', '/api/channels/whatsapp/signup', {
        code, waba_id: session.waba_id, phone_number_id: session.phone_number_id, name: name || 'WhatsApp',
      });
      if (!r.ok) return report(problem(r, 'signup-failed'));
      say(notice, t('signup-connected'));
      await reload();
    } catch (err) {
      report(err.message);
    } finally {
      window.removeEventListener('message', listen);
    }
  }

  return { facebookLogin, whatsappSignup, openPicker };
}
