/*! SosyoCRM web-chat widget (minimal). Plain ES2017, no dependencies, no build step.
 * Embed: <script src="https://HUB/widget.js" data-channel="PUBLIC_KEY" async></script>
 * Speaks the realtime protocol v1 (docs/protocol.md) on /ws/visitor.
 *
 * Storage (all keys prefixed "sosyocrm:<channel>:"):
 *   localStorage   token    the visitor token: the same visitor (and conversation) across reloads
 *   sessionStorage cursor   the last event id seen: hello.resume_from after a reload
 *   sessionStorage history  the last messages shown, with the conversation id they belong to.
 *     Cursor and history live in the same storage so a resume fills exactly the gap; the hub has
 *     no history endpoint for visitors yet, so a new tab starts with an empty panel.
 * The socket is opened when the panel is first opened, or on load for a returning visitor.
 */
(() => {
  'use strict';
  if (window.SosyoChat) return;
  const script = document.currentScript || document.querySelector('script[data-channel]');
  const channel = script && script.getAttribute('data-channel');
  if (!channel) return console.warn('[SosyoChat] the script tag needs data-channel');
  const hub = new URL(script.src, location.href).origin;
  const color = /^#[0-9a-f]{3,8}$/i.test(script.getAttribute('data-color') || '') ? script.getAttribute('data-color') : '#4f46e5';
  const K = `sosyocrm:${channel}:`;
  const load = (s, k) => { try { return window[s].getItem(K + k); } catch (e) { return null; } };
  const save = (s, k, v) => { try { v == null ? window[s].removeItem(K + k) : window[s].setItem(K + k, v); } catch (e) { /* storage off */ } };
  const CURSOR = /^\d{1,20}-\d{1,20}$/;

  // UI: a shadow root keeps the page's CSS out and ours in.
  const host = document.createElement('div');
  host.id = 'sosyocrm-chat';
  const root = host.attachShadow({ mode: 'open' });
  root.innerHTML = `<style>
:host{all:initial}
*{box-sizing:border-box;margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
[hidden]{display:none!important}
button{cursor:pointer;border:0;padding:0;background:none;color:inherit}
.l{position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;background:${color};color:#fff;display:grid;place-items:center;box-shadow:0 6px 20px rgba(0,0,0,.25);transition:transform .15s}
.l:hover{transform:scale(1.06)}
.l svg{width:28px;height:28px;fill:currentColor}
.u{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;background:#ef4444;color:#fff;font-size:12px;font-weight:600;line-height:20px;text-align:center;padding:0 5px}
.p{position:fixed;right:20px;bottom:88px;z-index:2147483000;width:370px;height:min(560px,calc(100vh - 110px));background:#fff;color:#111827;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.22);display:flex;flex-direction:column;overflow:hidden}
header{background:${color};color:#fff;padding:14px 16px;display:flex;align-items:center;justify-content:space-between}
header b{display:block;font-size:16px;font-weight:600}
header small{font-size:12px;opacity:.85}
header small:before{content:"";display:inline-block;width:7px;height:7px;border-radius:50%;background:#fbbf24;margin-right:6px}
header small[data-state=online]:before{background:#4ade80}
header small[data-state=unavailable]:before{background:#f87171}
.x{font-size:24px;line-height:1;width:32px;height:32px;border-radius:8px}
.x:hover{background:rgba(255,255,255,.15)}
.ms{flex:1;overflow-y:auto;padding:16px;background:#f6f7fb;display:flex;flex-direction:column;gap:8px}
.hi{color:#4b5563;background:#fff;border-radius:12px;padding:10px 12px;border:1px solid #e5e7eb}
.m{max-width:80%;display:flex;flex-direction:column;align-self:flex-start;align-items:flex-start}
.m[data-direction=in]{align-self:flex-end;align-items:flex-end}
.b{padding:8px 12px;border-radius:16px 16px 16px 4px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;overflow-wrap:anywhere}
.m[data-direction=in] .b{background:${color};border-color:transparent;color:#fff;border-radius:16px 16px 4px 16px}
.m.s .b{opacity:.6}
.t{font-size:11px;color:#6b7280;margin-top:2px}
.m.f .t{color:#dc2626}
.ty{padding:4px 16px;font-size:12px;color:#6b7280;background:#f6f7fb;font-style:italic}
form{display:flex;gap:8px;align-items:flex-end;padding:10px;border-top:1px solid #e5e7eb}
textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:12px;padding:9px 12px;max-height:120px;color:#111827;background:#fff;outline:0}
textarea:focus{border-color:${color}}
.sd{width:38px;height:38px;border-radius:50%;background:${color};color:#fff;display:grid;place-items:center;flex:none}
.sd svg{width:18px;height:18px;fill:currentColor}
@media (max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}.p:not([hidden])~.l{display:none}}
</style>
<section class="p" data-sc="panel" role="dialog" aria-label="Chat" hidden>
<header><div><b>Chat with us</b><small data-sc="status" data-state="offline">Offline</small></div><button class="x" type="button" aria-label="Close chat">&times;</button></header>
<div class="ms" data-sc="messages" role="log" aria-live="polite"><p class="hi">Hi! Ask us anything. We usually reply in a few minutes.</p></div>
<div class="ty" data-sc="typing" hidden>Agent is typing…</div>
<form><textarea data-sc="input" rows="1" maxlength="10000" placeholder="Type a message…" aria-label="Message"></textarea><button class="sd" data-sc="send" type="submit" aria-label="Send"><svg viewBox="0 0 24 24"><path d="M3 20.5 21 12 3 3.5 3 10l12 2-12 2z"/></svg></button></form>
</section>
<button class="l" data-sc="launcher" type="button" aria-label="Open chat" aria-expanded="false"><svg viewBox="0 0 24 24"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg><span class="u" hidden></span></button>`;
  const $ = (s) => root.querySelector(s);
  const panel = $('.p'), launcher = $('.l'), badge = $('.u'), list = $('.ms'), input = $('textarea'),
    typingEl = $('.ty'), statusEl = $('[data-sc=status]');

  // State
  let token = null, ws = null, live = false, busy = false, stopped = false, tries = 0, timer = 0;
  let open = false, unread = 0, typingOn = false, typingTimer = 0, agentTypingTimer = 0;
  let cursor = load('sessionStorage', 'cursor');
  if (!CURSOR.test(cursor || '')) cursor = null;
  let history = [];
  try { history = JSON.parse(load('sessionStorage', 'history')) || []; } catch (e) { /* start empty */ }
  let conversation = load('sessionStorage', 'conversation');
  const seen = new Set();
  const pending = new Map(); // client_id -> {frame, el, acked}: the outbox until the event arrives

  const uid = () => {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  };
  const time = (iso) => { const d = new Date(iso); return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); };
  const near = () => list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const bottom = () => { list.scrollTop = list.scrollHeight; };

  function status(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function bubble(direction, text) {
    const el = document.createElement('div');
    el.className = 'm';
    el.dataset.sc = 'message';
    el.dataset.direction = direction;
    const b = document.createElement('div');
    b.className = 'b';
    b.textContent = text; // never innerHTML: message text is untrusted
    const t = document.createElement('div');
    t.className = 't';
    el.append(b, t);
    return el;
  }

  function show(m, store) {
    if (!m || !m.id || seen.has(m.id)) return;
    seen.add(m.id);
    const stick = near();
    const p = m.client_id && pending.get(m.client_id);
    let el;
    if (p) { pending.delete(m.client_id); el = p.el; } else { el = bubble(m.direction, m.text || (m.attachments && m.attachments.length ? '[attachment]' : '')); list.appendChild(el); }
    el.className = 'm';
    el.dataset.id = m.id;
    const who = m.direction === 'out' && m.sender && m.sender.name;
    el.lastChild.textContent = (who ? who + ' · ' : '') + time(m.sent_at);
    if (store) {
      history.push({ id: m.id, direction: m.direction, text: m.text, sent_at: m.sent_at, sender: { type: m.sender && m.sender.type, name: m.sender && m.sender.name } });
      history = history.slice(-100);
      save('sessionStorage', 'history', JSON.stringify(history));
    }
    if (m.direction === 'out') {
      typingEl.hidden = true;
      if (!open && store) { unread++; badge.textContent = unread; badge.hidden = false; }
    }
    if (stick || p) bottom();
  }

  function reset(conversationId) { // a different visitor: forget what belonged to the old one
    conversation = conversationId;
    save('sessionStorage', 'conversation', conversation);
    cursor = null; history = []; seen.clear();
    save('sessionStorage', 'cursor', null);
    save('sessionStorage', 'history', null);
    list.querySelectorAll('.m').forEach((el) => { if (!el.classList.contains('s')) el.remove(); });
  }

  // Connection
  async function fetchToken() {
    const previous = load('localStorage', 'token');
    const r = await fetch(hub + '/api/widget/token', {
      method: 'POST', mode: 'cors', credentials: 'omit', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(previous ? { channel, token: previous } : { channel }),
    });
    if (r.status === 403 || r.status === 404) { stopped = true; throw new Error('channel unavailable (' + r.status + ')'); }
    if (!r.ok) throw new Error('token request failed (' + r.status + ')');
    const j = await r.json();
    token = j.token;
    save('localStorage', 'token', token);
    if (j.conversation_id !== conversation) reset(j.conversation_id);
  }

  async function connect() {
    clearTimeout(timer);
    if (ws || busy || stopped) return;
    busy = true;
    status('connecting', 'Connecting…');
    try {
      if (!token) await fetchToken();
    } catch (e) {
      busy = false;
      console.warn('[SosyoChat]', e.message);
      return stopped ? status('unavailable', 'Chat unavailable') : retry();
    }
    busy = false;
    const s = ws = new WebSocket(hub.replace(/^http/, 'ws') + '/ws/visitor');
    let last = Date.now(), pingAt = 0;
    const pinger = setInterval(() => { // a half-open socket never closes by itself
      if (pingAt && last < pingAt) return closed(4000);
      if (live) { pingAt = Date.now(); s.send('{"type":"ping"}'); }
    }, 25000);
    const closed = (code) => {
      if (ws !== s) return;
      clearInterval(pinger);
      ws = null; live = false; typingOn = false;
      s.onclose = s.onmessage = null;
      if (code === 4000) s.close();
      if (code === 4409) { cursor = null; save('sessionStorage', 'cursor', null); } // too old: start from now
      if (code === 4401) token = null; // ask for a fresh token
      if (code === 4403) { stopped = true; return status('unavailable', 'Chat unavailable'); }
      retry();
    };
    s.onopen = () => s.send(JSON.stringify(cursor ? { type: 'hello', token, resume_from: cursor } : { type: 'hello', token }));
    s.onclose = (e) => closed(e.code);
    s.onmessage = (e) => {
      last = Date.now();
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      frame(s, f);
    };
  }

  function retry() {
    const base = Math.min(30000, 500 * 2 ** tries++);
    status('connecting', 'Reconnecting…');
    timer = setTimeout(connect, base / 2 + Math.random() * base / 2); // exponential, with jitter
  }

  function frame(s, f) {
    if (f.type === 'welcome') {
      live = true; tries = 0;
      cursor = f.cursor;
      save('sessionStorage', 'cursor', cursor);
      status('online', 'Online');
      pending.forEach((p) => { if (!p.acked) s.send(p.frame); }); // the hub dedupes by client_id
    } else if (f.type === 'event') {
      cursor = f.id;
      save('sessionStorage', 'cursor', cursor);
      const d = f.data || {};
      if (f.name === 'message.created') show(d.message, true);
      else if (f.name === 'typing' && d.by && d.by.type === 'agent') {
        clearTimeout(agentTypingTimer);
        typingEl.hidden = !d.on;
        if (d.on) agentTypingTimer = setTimeout(() => { typingEl.hidden = true; }, 10000);
      }
    } else if (f.type === 'ack') {
      const p = pending.get(f.client_id);
      if (p) p.acked = true;
    } else if (f.type === 'error' && f.client_id) {
      const p = pending.get(f.client_id);
      if (p) {
        pending.delete(f.client_id);
        p.el.className = 'm f';
        p.el.lastChild.textContent = 'Not sent: ' + f.message;
      }
    }
  }

  // Sending
  function send() {
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    grow();
    const id = uid();
    const el = bubble('in', text);
    el.className = 'm s';
    el.lastChild.textContent = 'Sending…';
    list.appendChild(el);
    bottom();
    const p = { frame: JSON.stringify({ type: 'message.send', client_id: id, text }), el, acked: false };
    pending.set(id, p);
    typing(false);
    if (live) ws.send(p.frame); else { stopped = false; connect(); }
  }

  function typing(on) { // "on" at most once per burst, "off" after 3 s without a key
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 3000);
    if (!live) { typingOn = false; return; }
    if (on === typingOn) return;
    typingOn = on;
    ws.send(JSON.stringify({ type: 'typing', on }));
  }

  function grow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  function setOpen(value, focus) {
    open = value;
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', open ? 'Close chat' : 'Open chat');
    save('sessionStorage', 'open', open ? '1' : null);
    if (!open) return;
    unread = 0;
    badge.hidden = true;
    stopped = false;
    connect();
    bottom();
    if (focus) input.focus();
  }

  launcher.addEventListener('click', () => setOpen(!open, true));
  $('.x').addEventListener('click', () => setOpen(false));
  $('form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  input.addEventListener('input', () => { grow(); typing(input.value.trim() !== ''); });
  window.addEventListener('online', () => { if (!ws && (open || token)) { tries = 0; connect(); } });

  window.SosyoChat = { open: () => setOpen(true, true), close: () => setOpen(false), toggle: () => setOpen(!open, true) };

  history.forEach((m) => show(m, false));
  const mount = () => {
    document.body.appendChild(host);
    if (load('sessionStorage', 'open')) setOpen(true, false);
    else if (load('localStorage', 'token')) connect(); // a returning visitor hears replies right away
  };
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
})();
