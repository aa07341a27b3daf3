/* SosyoCRM agent inbox: plain JS, no framework, no build step.
 * REST under /api (cookie session + X-CSRF-Token on POST), realtime protocol v1 on /ws/agent.
 *
 * Consistency: the conversation list and the open thread are (re)loaded over REST after every
 * welcome that is not a resume (first connect, or after 4409 "cursor too old"), so nothing
 * published before the socket went live is missed; live events are merged in by id and by time.
 * Messages seen live are also kept per conversation (last 50), because the database may lag the
 * stream by a moment (the persist worker) when an agent opens a brand-new conversation.
 * Message text only ever reaches the page through textContent.
 */
(() => {
  'use strict';
  const ib = (name, root = document) => root.querySelector(`[data-ib="${name}"]`);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  };
  const ms = (iso) => { const t = Date.parse(iso); return isNaN(t) ? 0 : t; };
  const uid = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(''));
  const clock = (iso) => {
    const d = new Date(iso);
    if (isNaN(d)) return '';
    return d.toDateString() === new Date().toDateString()
      ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : d.toLocaleDateString([], { month: 'short', day: 'numeric' });
  };
  const KINDS = { webchat: 'Web chat', instagram: 'Instagram', messenger: 'Messenger', whatsapp: 'WhatsApp', telegram: 'Telegram' };

  const loginView = document.getElementById('login');
  const appView = document.getElementById('app');
  const loginForm = ib('login-form'), loginError = ib('login-error'), loginSubmit = ib('login-submit');
  const email = ib('login-email'), password = ib('login-password');
  const statusEl = ib('status'), listEl = ib('conversations'), emptyEl = ib('no-conversations');
  const placeholder = ib('placeholder'), pane = ib('pane'), messagesEl = ib('messages'), olderBtn = ib('load-older');
  const titleEl = ib('title'), subtitleEl = ib('subtitle'), typingEl = ib('typing'), reply = ib('reply');

  // State
  let csrf = null, active = false, loaded = false;
  const conversations = new Map(); // id -> {id, channel_id, contact_id, status, last_activity_at, last_message_preview, last_event_id, name, unread}
  const rows = new Map(); // id -> <li>
  const channels = new Map(); // id -> {kind, name}
  const recent = new Map(); // conversation id -> messages seen live (bounded)
  let openId = null, shown = new Set(), nextBefore = null, loadSeq = 0;
  const pending = new Map(); // client_id -> {frame, el, acked, conversationId, tries}
  const readSent = new Map(); // conversation id -> last up_to sent
  let ws = null, live = false, busy = false, cursor = null, tries = 0, timer = 0;
  let typingOn = null, typingTimer = 0, visitorTypingTimer = 0;

  // REST
  async function api(method, path, body) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
    const r = await fetch(path, {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch (e) { /* no body */ }
    if (r.status === 401 && active) sessionGone();
    return { ok: r.ok, status: r.status, data };
  }
  const errorText = (r, fallback) => (r.data && r.data.error && r.data.error.message) || fallback;

  // Login and logout
  function showLogin(message) {
    appView.hidden = true;
    loginView.hidden = false;
    loginError.textContent = message || '';
    loginError.hidden = !message;
    (message && email.value ? password : email).focus();
  }

  function start(data) {
    csrf = data.csrf_token;
    active = true;
    ib('me').textContent = (data.user && data.user.name) || 'Agent';
    loginView.hidden = true;
    appView.hidden = false;
    renderList();
    api('GET', '/api/channels').then((r) => {
      if (!r.ok) return;
      r.data.items.forEach((c) => channels.set(c.id, c));
      renderList();
    }).catch(() => {});
    connect();
  }

  function stop() {
    active = false; loaded = false; live = false; cursor = null; csrf = null; openId = null;
    clearTimeout(timer);
    if (ws) { ws.onclose = ws.onmessage = null; ws.close(1000); ws = null; }
    conversations.clear(); rows.clear(); recent.clear(); pending.clear(); readSent.clear();
    listEl.replaceChildren();
    pane.hidden = true;
    placeholder.hidden = false;
  }

  function sessionGone() {
    stop();
    showLogin('Your session has ended. Please sign in again.');
  }

  loginForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!email.value.trim() || !password.value) return showLogin('Enter your e-mail and password.');
    loginError.hidden = true;
    loginSubmit.disabled = true;
    try {
      const r = await api('POST', '/api/auth/login', { email: email.value.trim(), password: password.value });
      if (!r.ok) return showLogin(errorText(r, 'Could not sign in.'));
      password.value = '';
      start(r.data);
    } catch (err) {
      showLogin('The hub is not reachable. Try again in a moment.');
    } finally {
      loginSubmit.disabled = false;
    }
  });

  ib('logout').addEventListener('click', async () => {
    try { await api('POST', '/api/auth/logout'); } catch (e) { /* the cookie expires anyway */ }
    stop();
    showLogin();
  });

  // Conversation list
  async function loadConversations() {
    const r = await api('GET', '/api/conversations?limit=100');
    if (!r.ok) return;
    loaded = true;
    for (const item of r.data.items) {
      const known = conversations.get(item.id);
      if (known && ms(known.last_activity_at) > ms(item.last_activity_at)) continue; // live is newer
      conversations.set(item.id, Object.assign({ unread: 0 }, known, item));
    }
    renderList();
  }

  function title(c) {
    return c.name || 'Visitor ' + String(c.contact_id || c.id).slice(0, 6);
  }

  function renderList() {
    const sorted = [...conversations.values()].sort((a, b) => ms(b.last_activity_at) - ms(a.last_activity_at));
    emptyEl.hidden = sorted.length > 0;
    sorted.forEach((c) => {
      let li = rows.get(c.id);
      if (!li) {
        li = el('li');
        const b = el('button', 'conv');
        b.type = 'button';
        b.dataset.ib = 'conversation';
        b.dataset.id = c.id;
        b.append(el('span', 'name'), el('span', 'when'), el('span', 'preview'), el('span', 'tags'));
        b.addEventListener('click', () => openConversation(c.id));
        li.append(b);
        rows.set(c.id, li);
      }
      const b = li.firstChild;
      b.setAttribute('aria-current', String(c.id === openId));
      b.children[0].textContent = title(c);
      b.children[1].textContent = clock(c.last_activity_at);
      b.children[2].textContent = c.last_message_preview || '';
      const tags = b.children[3];
      tags.replaceChildren();
      if (c.unread) tags.append(el('span', 'tag unread', String(c.unread)));
      const channel = channels.get(c.channel_id);
      if (channel) tags.append(el('span', 'tag', KINDS[channel.kind] || channel.kind));
      tags.append(el('span', 'tag ' + c.status, c.status));
      listEl.appendChild(li); // appending an existing node moves it: this sorts the list
    });
  }

  // The open conversation
  async function openConversation(id, keep) {
    const c = conversations.get(id);
    if (!c) return;
    if (openId !== id) typing(false);
    const switching = openId !== id || !keep;
    openId = id;
    c.unread = 0;
    renderList();
    placeholder.hidden = true;
    pane.hidden = false;
    titleEl.textContent = title(c);
    const channel = channels.get(c.channel_id);
    subtitleEl.textContent = (channel ? (KINDS[channel.kind] || channel.kind) + ' · ' : '') + c.status;
    if (switching) {
      messagesEl.querySelectorAll('.msg').forEach((m) => m.remove());
      shown = new Set();
      typingEl.hidden = true;
      olderBtn.hidden = true;
      pending.forEach((p) => { if (p.conversationId === id) place(p.el); });
    }
    const seq = ++loadSeq;
    const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50`);
    if (seq !== loadSeq || openId !== id) return;
    if (r.ok) {
      r.data.items.forEach(addMessage);
      nextBefore = r.data.next_before;
      olderBtn.hidden = !nextBefore;
    }
    (recent.get(id) || []).forEach(addMessage);
    messagesEl.scrollTop = messagesEl.scrollHeight;
    markRead();
    if (switching) reply.focus();
  }

  olderBtn.addEventListener('click', async () => {
    if (!nextBefore || !openId) return;
    const id = openId;
    olderBtn.disabled = true;
    const r = await api('GET', `/api/conversations/${encodeURIComponent(id)}/messages?limit=50&before=${encodeURIComponent(nextBefore)}`);
    olderBtn.disabled = false;
    if (!r.ok || openId !== id) return;
    const before = messagesEl.scrollHeight;
    r.data.items.forEach(addMessage);
    messagesEl.scrollTop += messagesEl.scrollHeight - before; // keep the reader where they were
    nextBefore = r.data.next_before;
    olderBtn.hidden = !nextBefore;
  });

  function messageEl(direction, text) {
    const node = el('div', 'msg');
    node.dataset.ib = 'message';
    node.dataset.direction = direction;
    node.append(el('div', 'bubble', text), el('div', 'meta'));
    return node;
  }

  function place(node) { // insert in time order, after the "load older" button
    const at = Number(node.dataset.at || 0);
    let after = messagesEl.lastElementChild;
    while (after && after !== olderBtn && Number(after.dataset.at || 0) > at) after = after.previousElementSibling;
    messagesEl.insertBefore(node, after ? after.nextSibling : olderBtn.nextSibling);
  }

  function addMessage(m) {
    if (shown.has(m.id)) return;
    shown.add(m.id);
    const stick = messagesEl.scrollHeight - messagesEl.scrollTop - messagesEl.clientHeight < 80;
    const p = m.client_id && pending.get(m.client_id);
    let node;
    if (p) {
      pending.delete(m.client_id);
      node = p.el;
      node.className = 'msg';
      node.remove();
    } else {
      node = messageEl(m.direction, m.text || (m.attachments && m.attachments.length ? '[attachment]' : '[unsupported message]'));
    }
    node.dataset.id = m.id;
    node.dataset.at = String(ms(m.sent_at));
    const who = m.sender && (m.sender.name || (m.sender.type === 'agent' ? 'Agent' : ''));
    node.lastChild.textContent = [who, clock(m.sent_at), m.status === 'failed' ? 'failed' : ''].filter(Boolean).join(' · ');
    place(node);
    if (stick || p) messagesEl.scrollTop = messagesEl.scrollHeight;
  }

  function markRead() {
    const c = conversations.get(openId);
    if (!c || !c.last_event_id || !live || document.hidden || readSent.get(c.id) === c.last_event_id) return;
    readSent.set(c.id, c.last_event_id);
    ws.send(JSON.stringify({ type: 'read', conversation_id: c.id, up_to: c.last_event_id }));
  }
  document.addEventListener('visibilitychange', markRead);

  // Replying
  function sendReply() {
    const text = reply.value.trim();
    if (!text || !openId) return;
    reply.value = '';
    const clientId = uid();
    const node = messageEl('out', text);
    node.classList.add('sending');
    node.dataset.at = String(Date.now());
    node.lastChild.textContent = 'Sending…';
    place(node);
    messagesEl.scrollTop = messagesEl.scrollHeight;
    const frame = JSON.stringify({ type: 'message.send', client_id: clientId, conversation_id: openId, text });
    pending.set(clientId, { frame, el: node, acked: false, conversationId: openId, tries: 0 });
    typing(false);
    if (live) ws.send(frame); // otherwise sent on the next welcome
  }

  ib('composer').addEventListener('submit', (e) => { e.preventDefault(); sendReply(); });
  reply.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); sendReply(); }
  });
  reply.addEventListener('input', () => typing(reply.value.trim() !== ''));

  function typing(on) { // one "on" per burst, "off" after 3 s without a key or on send
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => typing(false), 3000);
    const target = on ? openId : null;
    if (typingOn === target || !live) { if (!live) typingOn = null; return; }
    if (typingOn) ws.send(JSON.stringify({ type: 'typing', conversation_id: typingOn, on: false }));
    if (target) ws.send(JSON.stringify({ type: 'typing', conversation_id: target, on: true }));
    typingOn = target;
  }

  // Realtime
  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  async function connect() {
    clearTimeout(timer);
    if (!active || ws || busy) return;
    busy = true;
    setStatus('connecting', 'Connecting…');
    let r;
    try {
      r = await api('POST', '/api/agent/socket-token'); // short-lived: a fresh one for every connect
    } catch (e) {
      r = { ok: false, status: 0 };
    }
    busy = false;
    if (!active) return;
    if (!r.ok) return retry();
    const s = ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/agent`);
    let last = Date.now(), pingAt = 0;
    const pinger = setInterval(() => { // a half-open socket never closes by itself
      if (pingAt && last < pingAt) return closed(4000);
      if (live) { pingAt = Date.now(); s.send('{"type":"ping"}'); }
    }, 25000);
    const closed = (code) => {
      if (ws !== s) return;
      clearInterval(pinger);
      ws = null; live = false; typingOn = null;
      s.onclose = s.onmessage = null;
      if (code === 4000) s.close();
      if (code === 4409) cursor = null; // too old to resume: the next welcome reloads over REST
      retry();
    };
    s.onopen = () => s.send(JSON.stringify(cursor ? { type: 'hello', token: r.data.token, resume_from: cursor } : { type: 'hello', token: r.data.token }));
    s.onclose = (e) => closed(e.code);
    s.onmessage = (e) => {
      last = Date.now();
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      onFrame(s, f);
    };
  }

  function retry() {
    if (!active) return;
    const base = Math.min(30000, 500 * 2 ** tries++);
    const delay = base / 2 + Math.random() * base / 2; // exponential backoff with jitter
    setStatus('offline', 'Reconnecting…');
    timer = setTimeout(connect, delay);
    if (!loaded) loadConversations().catch(() => {});
  }

  function onFrame(s, f) {
    if (f.type === 'welcome') {
      live = true; tries = 0;
      cursor = f.cursor;
      setStatus('live', 'Live');
      if (!f.resumed) {
        loadConversations().catch(() => {});
        if (openId) openConversation(openId, true);
      }
      pending.forEach((p) => { if (!p.acked) s.send(p.frame); }); // the hub dedupes by client_id
      markRead();
    } else if (f.type === 'event') {
      cursor = f.id;
      onEvent(f.id, f.name, f.data || {});
    } else if (f.type === 'ack') {
      const p = pending.get(f.client_id);
      if (p) p.acked = true;
    } else if (f.type === 'error' && !f.client_id) {
      // typing/read on a conversation the database does not have yet (the persist worker lags
      // the stream): forget that typing was announced so the next key press tries again.
      console.warn('[inbox]', f.code, f.message);
      if (f.code === 'not_found') typingOn = null;
    } else if (f.type === 'error') {
      const p = pending.get(f.client_id);
      if (!p) return;
      if (f.code === 'not_found' && p.tries++ < 3) { // a brand-new conversation may not be stored yet
        setTimeout(() => { if (live && pending.has(f.client_id)) ws.send(p.frame); }, 1000);
        return;
      }
      pending.delete(f.client_id);
      p.el.className = 'msg failed';
      p.el.lastChild.textContent = 'Not sent: ' + f.message;
    }
  }

  function onEvent(id, name, data) {
    if (name === 'message.created' && data.message) {
      const m = data.message;
      let c = conversations.get(m.conversation_id);
      if (!c) {
        c = { id: m.conversation_id, channel_id: m.channel_id, contact_id: m.contact_id, status: 'open', unread: 0,
          last_activity_at: m.sent_at, last_message_preview: '' };
        conversations.set(c.id, c);
      }
      if (data.contact && data.contact.name) c.name = data.contact.name;
      if (ms(m.sent_at) >= ms(c.last_activity_at) || !c.last_message_preview) {
        c.last_activity_at = m.sent_at;
        c.last_message_preview = (m.text || (m.attachments && m.attachments.length ? '[attachment]' : '')).slice(0, 200);
        c.last_event_id = id;
        if (m.direction === 'in' && c.status === 'resolved') c.status = 'open';
      }
      const buffer = recent.get(c.id) || [];
      buffer.push(m);
      recent.delete(c.id); // re-inserted last: the map is kept in order of activity
      recent.set(c.id, buffer.slice(-50));
      if (recent.size > 200) recent.delete(recent.keys().next().value);
      if (c.id === openId) {
        addMessage(m);
        if (m.sender && m.sender.type === 'contact') typingEl.hidden = true;
        markRead();
      } else if (m.direction === 'in') {
        c.unread = (c.unread || 0) + 1;
      }
      renderList();
    } else if (name === 'typing') {
      if (data.conversation_id !== openId || !data.by || data.by.type !== 'contact') return;
      clearTimeout(visitorTypingTimer);
      typingEl.hidden = !data.on;
      if (data.on) visitorTypingTimer = setTimeout(() => { typingEl.hidden = true; }, 10000);
    } else if ((name === 'conversation.updated' || name === 'conversation.created') && data.conversation_id) {
      const c = conversations.get(data.conversation_id);
      if (c && data.status) { c.status = data.status; renderList(); }
    } else if (name === 'contact.updated' && data.contact) {
      conversations.forEach((c) => { if (c.contact_id === data.contact.id && data.contact.name) c.name = data.contact.name; });
      renderList();
    }
  }

  window.addEventListener('online', () => { if (active && !ws) { tries = 0; connect(); } });

  // Boot
  api('GET', '/api/me').then((r) => (r.ok ? start(r.data) : showLogin()), () => showLogin('The hub is not reachable.'));
})();
