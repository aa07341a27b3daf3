/*! SosyoCRM web chat (minimal). Plain ES2017, no dependencies. Embed:
 * <script src="https://HUB/widget.js" data-channel="PUBLIC_KEY" async></script>
 * Protocol v1 on /ws/visitor (docs/protocol.md). Colour: #sosyocrm-chat{--sc-color:#0a7}.
 * Keys "sosyocrm:<channel>:*": localStorage token keeps the visitor across reloads; sessionStorage
 * cursor (last event id, for resume_from) and history (messages shown; the hub has no visitor
 * history endpoint yet) go together, so a resume fills exactly the gap.
 */
(() => {
  'use strict';
  if (window.SosyoChat) return;
  const script = document.currentScript || document.querySelector('script[data-channel]');
  const channel = script && script.getAttribute('data-channel');
  if (!channel) return console.warn('[SosyoChat] the script tag needs data-channel');
  const hub = new URL(script.src, location.href).origin;
  const K = `sosyocrm:${channel}:`;
  const get = (s, k) => { try { return window[s].getItem(K + k); } catch (e) { return null; } };
  const put = (s, k, v) => { try { v == null ? window[s].removeItem(K + k) : window[s].setItem(K + k, v); } catch (e) { /* off */ } };

  // UI in a shadow root: the page's CSS stays out, ours stays in.
  const host = document.createElement('div');
  host.id = 'sosyocrm-chat';
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>
:host{all:initial;--c:var(--sc-color,#4f46e5)}
*{box-sizing:border-box;margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
[hidden]{display:none!important}
button{cursor:pointer;border:0;padding:0;background:0 0;color:inherit}
svg{fill:currentColor}
.l,.p{position:fixed;right:20px;z-index:2147483000}
.l{bottom:20px;width:56px;height:56px;border-radius:50%;background:var(--c);color:#fff;display:grid;place-items:center;box-shadow:0 6px 20px #0004}
.l svg{width:28px}
.u{position:absolute;top:-2px;right:-2px;min-width:20px;border-radius:10px;background:#e11;color:#fff;font-size:12px;line-height:20px;padding:0 5px}
.p{bottom:88px;width:370px;height:min(560px,calc(100vh - 110px));background:#fff;color:#111;border-radius:16px;box-shadow:0 12px 40px #0004;display:flex;flex-direction:column;overflow:hidden}
header{background:var(--c);color:#fff;padding:14px 16px;display:flex;justify-content:space-between}
b{display:block;font-size:16px}
small{font-size:12px;opacity:.85}
small:before{content:"";display:inline-block;width:7px;height:7px;border-radius:50%;background:#fb2;margin-right:6px}
[data-state=online]:before{background:#4d8}
.x{font-size:24px;width:32px}
.ms{flex:1;overflow-y:auto;padding:16px;background:#f6f7fb;display:flex;flex-direction:column;gap:8px}
.m{max-width:80%;display:flex;flex-direction:column;align-self:flex-start;align-items:flex-start}
.m[data-direction=in]{align-self:flex-end;align-items:flex-end}
.hi,.b{padding:8px 12px;border-radius:16px 16px 16px 4px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;overflow-wrap:anywhere}
.m[data-direction=in] .b{background:var(--c);color:#fff;border-radius:16px 16px 4px 16px}
.s .b{opacity:.6}
.t{font-size:11px;color:#667}
.f .t{color:#d22}
.ty{padding:4px 16px;font-size:12px;color:#667;font-style:italic}
form{display:flex;gap:8px;align-items:flex-end;padding:10px;border-top:1px solid #e5e7eb}
textarea{flex:1;resize:none;border:1px solid #ccd;border-radius:12px;padding:9px 12px;max-height:120px;outline:0}
textarea:focus{border-color:var(--c)}
.sd{width:38px;height:38px;border-radius:50%;background:var(--c);color:#fff;display:grid;place-items:center}
.sd svg{width:18px}
@media(max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}.p:not([hidden])~.l{display:none}}
</style>
<section class="p" data-sc="panel" role="dialog" aria-label="Chat" hidden>
<header><div><b>Chat with us</b><small data-sc="status">Offline</small></div><button class="x" aria-label="Close chat">&times;</button></header>
<div class="ms" data-sc="messages" role="log"><p class="hi">Hi! Ask us anything. We usually reply in a few minutes.</p></div>
<div class="ty" data-sc="typing" hidden>Agent is typing…</div>
<form><textarea data-sc="input" rows="1" maxlength="10000" placeholder="Type a message…" aria-label="Message"></textarea><button class="sd" data-sc="send" aria-label="Send"><svg viewBox="0 0 24 24"><path d="M3 20.5 21 12 3 3.5V10l12 2-12 2z"/></svg></button></form>
</section>
<button class="l" data-sc="launcher" type="button" aria-label="Chat" aria-expanded="false"><svg viewBox="0 0 24 24"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg><span class="u" hidden></span></button>`;
  const $ = (s) => root.querySelector(s);
  const panel = $('.p'), launcher = $('.l'), badge = $('.u'), list = $('.ms'), input = $('textarea'),
    typingEl = $('.ty'), statusEl = $('small');

  let token = null, ws = null, live = false, busy = false, stopped = false, tries = 0, timer = 0;
  let open = false, unread = 0, typingOn = false, typingTimer = 0, agentTimer = 0;
  let cursor = get('sessionStorage', 'cursor');
  if (!/^\d{1,20}-\d{1,20}$/.test(cursor)) cursor = null;
  let conversation = get('sessionStorage', 'conversation'), history = [];
  try { history = JSON.parse(get('sessionStorage', 'history')) || []; } catch (e) { /* empty */ }
  const seen = new Set();
  const outbox = new Map(); // client_id -> {frame, el, acked}, until the message's event arrives

  const uid = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => (x + 256).toString(16).slice(1)).join(''));
  const bottom = () => { list.scrollTop = list.scrollHeight; };
  const status = (state, text) => { statusEl.dataset.state = state; statusEl.textContent = text; };
  const tx = (frame) => ws.send(JSON.stringify(frame));

  function bubble(direction, text, meta) {
    const el = document.createElement('div');
    el.className = 'm';
    el.dataset.sc = 'message';
    el.dataset.direction = direction;
    el.innerHTML = '<div class="b"></div><div class="t"></div>'; // fixed markup; text below
    el.firstChild.textContent = text;
    el.lastChild.textContent = meta;
    return el;
  }

  function show(m, fresh) {
    if (!m || seen.has(m.id)) return;
    seen.add(m.id);
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const p = m.client_id && outbox.get(m.client_id);
    const d = new Date(m.sent_at);
    const meta = (m.direction === 'out' && m.sender && m.sender.name ? m.sender.name + ' · ' : '')
      + (isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    const el = p ? p.el : list.appendChild(bubble(m.direction, m.text || '[attachment]', ''));
    outbox.delete(m.client_id);
    el.className = 'm';
    el.dataset.id = m.id;
    el.lastChild.textContent = meta;
    if (fresh) {
      history = history.concat({ id: m.id, direction: m.direction, text: m.text, sent_at: m.sent_at, sender: m.sender }).slice(-100);
      put('sessionStorage', 'history', JSON.stringify(history));
      if (m.direction === 'out') {
        typingEl.hidden = true;
        if (!open) { badge.textContent = ++unread; badge.hidden = false; }
      }
    }
    if (stick || p) bottom();
  }

  async function fetchToken() {
    const previous = get('localStorage', 'token');
    const r = await fetch(hub + '/api/widget/token', {
      method: 'POST', credentials: 'omit', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(previous ? { channel, token: previous } : { channel }),
    });
    if (r.status === 403 || r.status === 404) stopped = true; // origin not allowed, unknown channel
    if (!r.ok) throw new Error('token request answered ' + r.status);
    const j = await r.json();
    token = j.token;
    put('localStorage', 'token', token);
    if (j.conversation_id !== conversation) { // another visitor: drop what was the old one's
      conversation = j.conversation_id;
      cursor = null; history = [];
      ['cursor', 'history'].forEach((k) => put('sessionStorage', k, null));
      put('sessionStorage', 'conversation', conversation);
      list.querySelectorAll('.m:not(.s)').forEach((el) => el.remove());
    }
  }

  async function connect() {
    clearTimeout(timer);
    if (ws || busy || stopped) return;
    busy = true;
    status('connecting', 'Connecting…');
    try {
      if (!token) await fetchToken();
    } catch (e) {
      console.warn('[SosyoChat]', e.message);
      busy = false;
      return stopped ? status('off', 'Chat unavailable') : retry();
    }
    busy = false;
    const s = ws = new WebSocket(hub.replace(/^http/, 'ws') + '/ws/visitor');
    let last = 0, pingAt = 0;
    const pinger = setInterval(() => { // a half-open socket would never close by itself
      if (pingAt > last) return closed(4000);
      if (live) { pingAt = Date.now(); tx({ type: 'ping' }); }
    }, 25000);
    const closed = (code) => {
      if (ws !== s) return;
      clearInterval(pinger);
      ws = null; live = typingOn = false;
      s.onclose = s.onmessage = null;
      s.close();
      if (code === 4409) { cursor = null; put('sessionStorage', 'cursor', null); } // resume from now
      if (code === 4401) token = null; // fetch a fresh one
      if (code === 4403) { stopped = true; return status('off', 'Chat unavailable'); }
      retry();
    };
    s.onopen = () => tx(cursor ? { type: 'hello', token, resume_from: cursor } : { type: 'hello', token });
    s.onclose = (e) => closed(e.code);
    s.onmessage = (e) => {
      last = Date.now();
      try { onFrame(JSON.parse(e.data)); } catch (err) { console.warn('[SosyoChat]', err); }
    };
  }

  function retry() { // exponential backoff with jitter
    const base = Math.min(30000, 500 * 2 ** tries++);
    status('connecting', 'Reconnecting…');
    timer = setTimeout(connect, base / 2 + Math.random() * base / 2);
  }

  function onFrame(f) {
    const p = f.client_id && outbox.get(f.client_id);
    if (f.type === 'welcome' || f.type === 'event') {
      cursor = f.cursor || f.id;
      put('sessionStorage', 'cursor', cursor);
    }
    if (f.type === 'welcome') {
      live = true; tries = 0;
      status('online', 'Online');
      outbox.forEach((o) => { if (!o.acked) ws.send(o.frame); }); // the hub dedupes by client_id
    } else if (f.type === 'event' && f.name === 'message.created') {
      show(f.data.message, true);
    } else if (f.type === 'event' && f.name === 'typing' && f.data.by && f.data.by.type === 'agent') {
      clearTimeout(agentTimer);
      typingEl.hidden = !f.data.on;
      if (f.data.on) agentTimer = setTimeout(() => { typingEl.hidden = true; }, 10000);
    } else if (f.type === 'ack' && p) {
      p.acked = true;
    } else if (f.type === 'error' && p) {
      outbox.delete(f.client_id);
      p.el.className = 'm f';
      p.el.lastChild.textContent = 'Not sent: ' + f.message;
    }
  }

  function send() {
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    grow();
    const id = uid();
    const el = list.appendChild(bubble('in', text, 'Sending…'));
    el.className = 'm s';
    bottom();
    const o = { frame: JSON.stringify({ type: 'message.send', client_id: id, text }), el, acked: false };
    outbox.set(id, o);
    typing(false);
    if (live) ws.send(o.frame); else { stopped = false; connect(); }
  }

  function typing(on) { // one "on" per burst; "off" after 3 s without a key, or on send
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(typing, 3000, false);
    if (live && on !== typingOn) tx({ type: 'typing', on: typingOn = on });
  }

  function grow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  function setOpen(value, focus) {
    open = value;
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', open);
    put('sessionStorage', 'open', open ? 1 : null);
    if (!open) return;
    unread = 0;
    badge.hidden = true;
    stopped = false;
    connect();
    bottom();
    if (focus) input.focus();
  }

  launcher.onclick = () => setOpen(!open, true);
  $('.x').onclick = () => setOpen(false);
  $('form').onsubmit = (e) => { e.preventDefault(); send(); };
  input.onkeydown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  };
  input.oninput = () => { grow(); typing(!!input.value.trim()); };
  addEventListener('online', () => { if (!ws && (open || token)) { tries = 0; connect(); } });

  window.SosyoChat = { open: () => setOpen(true, true), close: () => setOpen(false), toggle: () => setOpen(!open, true) };

  history.forEach((m) => show(m, false));
  const mount = () => {
    document.body.appendChild(host);
    if (get('sessionStorage', 'open')) setOpen(true);
    else if (get('localStorage', 'token')) connect(); // a returning visitor hears replies at once
  };
  if (document.body) mount(); else addEventListener('DOMContentLoaded', mount);
})();
