/* The realtime client of protocol v2 (docs/protocol.md), shared by the agent inbox and the
 * web-chat widget. Plain ES2017 with one function and one export line: the inbox imports it as
 * an ES module; the /widget.js route (hub/web/app.py) serves it inside the widget's own closure,
 * without the export line (docs/widget.md).
 *
 * It opens the socket, sends `hello` with a fresh token, `v: 2` and `resume_from` (the last
 * event id seen), rebuilds v2's lean `message.created` data into the whole message (`unlean`)
 * before the caller sees it, so callers read v1's shapes; keeps that cursor from `welcome` and
 * `event` frames, pings every 25 s and drops a socket that stops answering, and reconnects
 * with exponential backoff and jitter after any close the caller does not refuse. 4409
 * (cursor too old) drops the cursor and tells the caller to reload over REST; 4401/4403/4410
 * ask the caller whether to carry on. Frames queued with a client_id are sent when live and
 * again after every welcome until the hub acks them or the caller settles them (the hub
 * de-duplicates by client_id).
 *
 *   const socket = hubSocket({
 *     url: 'wss://hub/ws/agent',
 *     token: async () => '…',   // before every connect; throw to retry later, null to stay down
 *     cursor: null,             // where to resume from, if known
 *     onConnecting(), onRetry(delayMs), onWelcome(frame), onEvent(frame), onFrame(frame),
 *     onClose(code), onCursorTooOld(), onDenied(code) (return false to stay down), ping: 25000,
 *   });
 *   socket.connect(); socket.send(frame); socket.queue(clientId, frame); socket.settle(clientId);
 *   socket.live; socket.cursor (settable); socket.retryNow(); socket.close();
 */
/* v2's lean data of a `message.created` back to v1's whole message, contact and thread, by
 * the rules of docs/protocol.md ("Protocol versions"); schemas/lean.py is the reference and
 * tests/test_lean_js.py checks this copy against it. A null means "none": the key is dropped. */
function unlean(data, workspaceId) {
  const m = Object.assign({
    workspace_id: workspaceId, kind: 'dm', direction: 'in', status: 'received', attachments: [], reactions: [],
    edited: false, deleted: false, private_reply: false, note: false, standby: false, hidden: false,
  }, data.message);
  const full = { message: m };
  const c = data.contact ? (full.contact = Object.assign({ id: m.contact_id, name: null }, data.contact)) : null;
  if (m.group) m.group = Object.assign({ renamed: false }, m.group);
  let s = Object.assign({ type: 'contact' }, m.sender);
  if (s.type === 'contact') s = Object.assign({ id: m.contact_id }, c ? { name: c.name } : {}, s);
  Object.keys(s).forEach((k) => { if (s[k] === null) delete s[k]; });
  m.sender = s;
  if (!('platform_message_id' in m)) {
    m.platform_message_id = (s.type === 'contact' && c ? 'v:' + c.platform_user_id : 'a:' + s.id) + ':' + m.client_id;
  }
  if ('thread' in data) {
    if (data.thread !== null) full.thread = data.thread;
  } else if (c && c.platform_user_id != null && m.channel_kind !== 'webchat') {
    full.thread = c.platform_user_id;
  }
  return full;
}

function hubSocket(options) {
  const o = options;
  const call = (name, ...args) => {
    if (!o[name]) return undefined;
    try { return o[name](...args); } catch (e) { console.warn('[hubsocket]', e); return undefined; }
  };
  const queued = new Map(); // client_id -> frame text, until acked or settled
  let ws = null, live = false, busy = false, down = false, tries = 0, timer = 0;
  let cursor = o.cursor || null;

  function retry() { // exponential backoff with jitter, at most 30 s
    const base = Math.min(30000, 500 * 2 ** tries++);
    const delay = base / 2 + Math.random() * base / 2;
    call('onRetry', delay);
    timer = setTimeout(connect, delay);
  }

  async function connect() {
    clearTimeout(timer);
    if (ws || busy || down) return;
    busy = true;
    call('onConnecting');
    let token;
    try {
      token = await o.token();
    } catch (e) {
      busy = false;
      if (!down) retry();
      return;
    }
    busy = false;
    if (down || token == null) return;
    const s = ws = new WebSocket(typeof o.url === 'function' ? o.url() : o.url);
    let last = 0, pingAt = 0;
    const every = o.ping === undefined ? 25000 : o.ping;
    const pinger = every ? setInterval(() => { // a half-open socket never closes by itself
      if (pingAt > last) return closed(4000);
      if (live) { pingAt = Date.now(); s.send('{"type":"ping"}'); }
    }, every) : 0;
    const closed = (code) => {
      if (ws !== s) return;
      clearInterval(pinger);
      ws = null; live = false;
      s.onclose = s.onmessage = null;
      s.close();
      if (code === 4409) { cursor = null; call('onCursorTooOld'); } // reload over REST
      call('onClose', code);
      if ((code === 4401 || code === 4403 || code === 4410) && call('onDenied', code) === false) return;
      if (!down) retry();
    };
    let version = 1, workspaceId = null; // as the welcome says
    s.onopen = () => s.send(JSON.stringify(cursor ? { type: 'hello', token, v: 2, resume_from: cursor } : { type: 'hello', token, v: 2 }));
    s.onclose = (e) => closed(e.code);
    s.onmessage = (e) => {
      last = Date.now();
      let f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      if (f.type === 'welcome') {
        live = true; tries = 0;
        cursor = f.cursor;
        version = f.v || 1; workspaceId = f.workspace_id || null;
        call('onWelcome', f);
        if (ws === s) queued.forEach((frame) => s.send(frame)); // the hub dedupes by client_id
      } else if (f.type === 'event') {
        cursor = f.id;
        if (version >= 2 && f.name === 'message.created' && f.data && f.data.message) f.data = unlean(f.data, workspaceId);
        call('onEvent', f);
      } else {
        if (f.type === 'ack') queued.delete(f.client_id);
        call('onFrame', f);
      }
    };
  }

  return {
    connect() { down = false; connect(); },
    retryNow() { if (!down && !ws) { tries = 0; connect(); } }, // e.g. the browser is online again
    close() { // stays down until connect()
      down = true; live = false;
      clearTimeout(timer);
      if (ws) { ws.onclose = ws.onmessage = null; ws.close(1000); ws = null; }
    },
    send(frame) { // only while live; true when sent
      if (!live) return false;
      ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      return true;
    },
    queue(clientId, frame) { // sent now if live, and after every welcome until acked
      const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
      queued.set(clientId, text);
      if (live) ws.send(text);
    },
    settle(clientId) { queued.delete(clientId); },
    get live() { return live; },
    get connected() { return ws !== null; },
    get cursor() { return cursor; },
    set cursor(value) { cursor = value || null; },
  };
}

export { hubSocket };
