/*! SosyoCRM web chat. Plain ES2017, no dependencies. Embed:
 * <script src="https://HUB/widget.js" data-channel="PUBLIC_KEY" async></script>
 * Optional: data-user-id + data-user-hash (identity verification), data-locale (en|tr).
 * API: window.SosyoChat.open() .close() .toggle() .identify({user_id, user_hash, name, email})
 * .reset() .on(name, fn) .off(name, fn); events "ready", "message:received", "message:sent",
 * also dispatched on window as "sosyochat:<name>" CustomEvents.
 * Protocol v1 on /ws/visitor (docs/protocol.md) through hubSocket, the hub's one socket client
 * (hub/static/hubsocket.js), which the /widget.js route serves with this file inside one closure
 * (docs/widget.md); the token travels in hello, never in a URL.
 * Storage keys "sosyocrm:<channel>:*": localStorage token (the visitor across reloads and tabs),
 * sessionStorage cursor and open state. With the channel's consent setting nothing is written
 * until the visitor starts a chat (sends a message or the pre-chat form).
 * Files: the clip button or a drop on the panel uploads them (XMLHttpRequest, for its progress)
 * to /api/widget/messages (the token in the Authorization header, checked before the body is
 * read); files in the conversation are fetched from /api/widget/media/{file}
 * with the token in the Authorization header (never in a URL) and shown from blob: URLs.
 */
(() => {
  'use strict';
  if (window.SosyoChat) return;
  const script = document.currentScript || document.querySelector('script[data-channel]');
  const channel = script && script.getAttribute('data-channel');
  if (!channel) return console.warn('[SosyoChat] the script tag needs data-channel');
  const hub = new URL(script.src, location.href).origin;
  const K = `sosyocrm:${channel}:`;
  const memory = {};
  // Nothing is written to the device until the channel's settings are known, and then, when
  // the channel asks for consent, not until the visitor starts a chat: until then, memory.
  let keep = false;
  const get = (s, k) => { if (!keep && (s + k) in memory) return memory[s + k]; try { return window[s].getItem(K + k); } catch (e) { return null; } };
  const put = (s, k, v) => {
    if (!keep) { memory[s + k] = v == null ? null : String(v); return; }
    try { v == null ? window[s].removeItem(K + k) : window[s].setItem(K + k, v); } catch (e) { /* storage off */ }
  };
  const startKeeping = () => {
    if (keep) return;
    keep = true;
    Object.keys(memory).forEach((k) => { const s = k.startsWith('local') ? 'localStorage' : 'sessionStorage'; put(s, k.slice(s.length), memory[k]); delete memory[k]; });
  };

  const STRINGS = {
    en: { title: 'Chat with us', greeting: 'Hi! Ask us anything. We usually reply in a few minutes.', online: 'Online', away: 'Away',
      connecting: 'Connecting…', reconnecting: 'Reconnecting…', unavailable: 'Chat unavailable', placeholder: 'Type a message…',
      send: 'Send', close: 'Close chat', open: 'Chat', sending: 'Sending…', sent: 'Sent', read: 'Read', failed: 'Not sent: {m}',
      typing: '{n} is typing…', agent: 'Agent', name: 'Name', email: 'E-mail', start: 'Start the chat', prechat: 'Tell us who you are and we will get back to you.',
      attachment: 'Attachment', newMessage: 'New message', badEmail: 'Enter a valid e-mail address.', needName: 'Enter your name.',
      attach: 'Attach files', uploading: 'Uploading… {p}%', downloading: 'downloading…', gone: 'not available', big: 'That file is too large.',
      type: 'That type of file cannot be sent.', busy: 'Too many messages. Wait a moment.', emoji: 'Emoji', offline: 'Offline',
      auto: 'Automatic reply', awayNote: 'We are away right now. Leave a message and we will reply when we are back.' },
    tr: { title: 'Bize yazın', greeting: 'Merhaba! Bize her şeyi sorabilirsiniz. Genellikle birkaç dakika içinde yanıtlarız.', online: 'Çevrimiçi', away: 'Şu an dışarıdayız',
      connecting: 'Bağlanıyor…', reconnecting: 'Yeniden bağlanıyor…', unavailable: 'Sohbet kullanılamıyor', placeholder: 'Bir mesaj yazın…',
      send: 'Gönder', close: 'Sohbeti kapat', open: 'Sohbet', sending: 'Gönderiliyor…', sent: 'Gönderildi', read: 'Okundu', failed: 'Gönderilemedi: {m}',
      typing: '{n} yazıyor…', agent: 'Temsilci', name: 'Adınız', email: 'E-posta', start: 'Sohbete başla', prechat: 'Kim olduğunuzu söyleyin, size dönelim.',
      attachment: 'Ek', newMessage: 'Yeni mesaj', badEmail: 'Geçerli bir e-posta adresi girin.', needName: 'Adınızı girin.',
      attach: 'Dosya ekle', uploading: 'Yükleniyor… %{p}', downloading: 'indiriliyor…', gone: 'kullanılamıyor', big: 'Bu dosya çok büyük.',
      type: 'Bu türde bir dosya gönderilemez.', busy: 'Çok fazla mesaj. Biraz bekleyin.', emoji: 'Emoji', offline: 'Çevrimdışı',
      auto: 'Otomatik yanıt', awayNote: 'Şu an burada değiliz. Mesajınızı bırakın, döndüğümüzde yanıtlayalım.' },
  };
  let lang = 'en';
  const SETTINGS_WAIT_MS = 2000;
  const t = (k, v) => (STRINGS[lang][k] || STRINGS.en[k]).replace(/\{(\w)\}/g, (m, x) => (v && x in v ? v[x] : m));

  // UI in a shadow root: the page's CSS stays out, ours stays in.
  const host = document.createElement('div');
  host.id = 'sosyocrm-chat';
  const root = host.attachShadow({ mode: 'open' });
  // Its styles as a constructed stylesheet: unlike a <style> element, that needs no
  // 'unsafe-inline' in the host page's Content-Security-Policy (docs/widget.md).
  const CSS = `:host{all:initial;--c:var(--sc-color,#4f46e5)}
*{box-sizing:border-box;margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
[hidden]{display:none!important}
button{cursor:pointer;border:0;padding:0;background:0 0;color:inherit}
svg{fill:currentColor}
.l,.p{position:fixed;right:20px;z-index:2147483000}
.left .l,.left .p{right:auto;left:20px}
.l{bottom:20px;width:56px;height:56px;border-radius:50%;background:var(--c);color:#fff;display:grid;place-items:center;box-shadow:0 6px 20px #0004}
.l svg{width:28px}
.u{position:absolute;top:-2px;right:-2px;min-width:20px;border-radius:10px;background:#e11;color:#fff;font-size:12px;line-height:20px;padding:0 5px}
.p{bottom:88px;width:370px;height:min(560px,calc(100vh - 110px));background:#fff;color:#111;border-radius:16px;box-shadow:0 12px 40px #0004;display:flex;flex-direction:column;overflow:hidden}
header{background:var(--c);color:#fff;padding:12px 16px;display:flex;gap:10px;align-items:center}
header div{flex:1;min-width:0}
.av{width:34px;height:34px;border-radius:50%;background:#fff3;display:grid;place-items:center;font-weight:700;flex:none}
b{display:block;font-size:16px}
small{font-size:12px;opacity:.9}
small:before{content:"";display:inline-block;width:7px;height:7px;border-radius:50%;background:#fb2;margin-right:6px}
[data-state=online]:before{background:#4d8}
[data-state=offline]:before,[data-state=off]:before{background:#f87171}
.x{font-size:24px;width:32px}
.ms{flex:1;overflow-y:auto;padding:16px;background:#f6f7fb;display:flex;flex-direction:column;gap:8px}
.m{max-width:80%;display:flex;flex-direction:column;align-self:flex-start;align-items:flex-start}
.m[data-direction=in]{align-self:flex-end;align-items:flex-end}
.hi,.b,.off{padding:8px 12px;border-radius:16px 16px 16px 4px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;overflow-wrap:anywhere}
.off{background:#fff7ed;border-color:#fed7aa}
.m[data-direction=in] .b{background:var(--c);color:#fff;border-radius:16px 16px 4px 16px}
.s .b{opacity:.6}
.t{font-size:11px;color:#667}
.f .t{color:#d22}
.ty{padding:4px 16px;font-size:12px;color:#667;font-style:italic}
form{display:flex;gap:8px;align-items:flex-end;padding:10px;border-top:1px solid #e5e7eb}
.pre{flex-direction:column;align-items:stretch;gap:8px;padding:16px}
input,textarea{border:1px solid #ccd;border-radius:12px;padding:9px 12px;outline:0;color:#111;background:#fff}
textarea{flex:1;resize:none;max-height:120px}
input:focus,textarea:focus{border-color:var(--c)}
.e{color:#d22;font-size:12px}
.go{background:var(--c);color:#fff;border-radius:12px;padding:9px 12px;font-weight:600}
.sd{width:38px;height:38px;border-radius:50%;background:var(--c);color:#fff;display:grid;place-items:center}
.sd svg{width:18px}
.at{width:30px;height:38px;color:#667;display:grid;place-items:center}
.at svg{width:20px}
.b img,.b video{display:block;max-width:100%;max-height:220px;border-radius:8px;margin-top:4px;cursor:zoom-in}
.b video{cursor:auto}
.b audio{display:block;width:230px;max-width:100%;margin-top:4px}
.b a{color:inherit}
.a{font-size:13px}
.eg{display:grid;grid-template-columns:repeat(8,1fr);gap:2px;padding:6px 10px;border-top:1px solid #e5e7eb}
.eg[hidden]{display:none}
.eg [role=row]{display:contents}
.eg button{font-size:20px;height:34px;border-radius:6px}
.eg button:focus{outline:2px solid var(--c);background:#f3f4f6}
progress{display:block;width:100%}
.dr .ms{outline:2px dashed var(--c);outline-offset:-6px}
@media(max-width:480px){.p{inset:0;width:auto;height:auto;border-radius:0}.p:not([hidden])~.l{display:none}}
`;
  root.innerHTML = `<div class="w" hidden><section class="p" data-sc="panel" role="dialog" hidden>
<header><span class="av" data-sc="avatar" aria-hidden="true"></span><div><b data-sc="title"></b><small data-sc="status" role="status"></small></div><button class="x" data-sc="close">&times;</button></header>
<div class="ms" data-sc="messages" role="log"><p class="hi" data-sc="greeting"></p><p class="off" data-sc="offline" hidden></p></div>
<div class="ty" data-sc="typing" hidden></div>
<div class="eg" data-sc="emoji-grid" role="grid" hidden></div>
<form class="pre" data-sc="prechat" hidden novalidate><p data-sc="prechat-text"></p><input data-sc="prechat-name" autocomplete="name" maxlength="200"><input data-sc="prechat-email" type="email" autocomplete="email" maxlength="320"><p class="e" data-sc="prechat-error" hidden></p><button class="go" data-sc="prechat-start"></button></form>
<form data-sc="composer"><button class="at" data-sc="attach" type="button"><svg viewBox="0 0 24 24"><path d="M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z"/></svg></button><input data-sc="file" type="file" multiple hidden><button class="at" data-sc="emoji" type="button" aria-haspopup="grid" aria-expanded="false"><svg viewBox="0 0 24 24"><path d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16zM8.5 11a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zm7 0a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3zM12 17.5c2.3 0 4.3-1.4 5.1-3.5H6.9c.8 2.1 2.8 3.5 5.1 3.5z"/></svg></button><textarea data-sc="input" rows="1" maxlength="10000"></textarea><button class="sd" data-sc="send"><svg viewBox="0 0 24 24"><path d="M3 20.5 21 12 3 3.5V10l12 2-12 2z"/></svg></button></form>
</section>
<button class="l" data-sc="launcher" type="button" aria-expanded="false"><svg viewBox="0 0 24 24"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg><span class="u" data-sc="badge" hidden></span></button></div>`;
  if ('adoptedStyleSheets' in root && 'replaceSync' in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.prepend(document.createElement('style'));
    root.firstChild.textContent = CSS;
  }
  const $ = (n) => root.querySelector(`[data-sc="${n}"]`);
  const wrap = root.querySelector('.w'), panel = $('panel'), launcher = $('launcher'), badge = $('badge'), list = $('messages'),
    input = $('input'), typingEl = $('typing'), statusEl = $('status'), pre = $('prechat'), composer = $('composer');

  let config = { title: null, greeting: null, colour: null, position: 'right', locale: null, prechat: { enabled: false }, consent_required: false, hours: null, limits: {} };
  let token = null, stopped = false, loaded = false;
  let settled = false; // the settings request has ended, answered or not
  let refused = null; // the hub's refusal of this page ({code, message}): the widget stays hidden
  let dropped = false; // the socket was live and is not: the header says offline until welcome
  let open = false, unread = 0, typingOn = false, typingTimer = 0, agentTimer = 0, flashTimer = 0, readUpTo = null;
  let identity = script.getAttribute('data-user-id') ? { user_id: script.getAttribute('data-user-id'), user_hash: script.getAttribute('data-user-hash') } : null;
  let conversation = null, profile = null;
  const seen = new Map(); // message id -> element
  const media = new Map(); // file (+ "#t" for a thumbnail) -> promise of its blob: URL
  const outbox = new Map(); // client_id -> {el}, until the message's event arrives
  const listeners = {};
  const pageTitle = document.title;

  const emit = (name, detail) => {
    (listeners[name] || []).slice().forEach((fn) => { try { fn(detail); } catch (e) { console.warn('[SosyoChat]', e); } });
    window.dispatchEvent(new CustomEvent(`sosyochat:${name}`, { detail }));
  };
  const uid = () => (crypto.randomUUID ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => (x + 256).toString(16).slice(1)).join(''));
  const bottom = () => { list.scrollTop = list.scrollHeight; };
  const status = (state, key) => { statusEl.dataset.state = state; statusEl.textContent = t(key); };
  const post = (path, body) => fetch(hub + path, { method: 'POST', credentials: 'omit', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const after = (a, b) => { const [am, as] = a.split('-').map(Number), [bm, bs] = b.split('-').map(Number); return am > bm || (am === bm && as > bs); };
  const stateOfHours = () => (config.hours && !config.hours.open_now ? 'away' : 'online');

  function localize() {
    const wanted = (script.getAttribute('data-locale') || config.locale || navigator.language || 'en').toLowerCase();
    lang = wanted.startsWith('tr') ? 'tr' : 'en';
    $('title').textContent = config.title || t('title');
    $('greeting').textContent = config.greeting || t('greeting');
    const off = config.hours && !config.hours.open_now && (config.hours.offline_message || t('awayNote'));
    $('offline').textContent = off || '';
    $('offline').hidden = !off;
    panel.setAttribute('aria-label', config.title || t('title'));
    launcher.setAttribute('aria-label', t('open'));
    $('close').setAttribute('aria-label', t('close'));
    $('send').setAttribute('aria-label', t('send'));
    $('attach').setAttribute('aria-label', t('attach'));
    $('emoji').setAttribute('aria-label', t('emoji'));
    emojiGrid.setAttribute('aria-label', t('emoji'));
    emojiCells.forEach((b, i) => b.setAttribute('aria-label', EMOJI[i][lang === 'tr' ? 2 : 1]));
    input.placeholder = t('placeholder');
    input.setAttribute('aria-label', t('placeholder'));
    input.maxLength = (config.limits && config.limits.max_message_chars) || 10000;
    $('prechat-text').textContent = t('prechat');
    $('prechat-name').placeholder = t('name');
    $('prechat-name').setAttribute('aria-label', t('name'));
    $('prechat-email').placeholder = t('email');
    $('prechat-email').setAttribute('aria-label', t('email'));
    $('prechat-start').textContent = t('start');
    if (config.colour) host.style.setProperty('--sc-color', config.colour);
    wrap.classList.toggle('left', config.position === 'left');
    if (!socket.live) status(stopped ? 'off' : dropped ? 'offline' : 'connecting', stopped ? 'unavailable' : dropped ? 'offline' : 'connecting');
  }

  function showPrechat() {
    const needed = config.prechat && config.prechat.enabled && !get('localStorage', 'profile') && !seen.size && !outbox.size;
    pre.hidden = !needed;
    composer.hidden = !!needed;
  }

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

  function fetchMedia(file, thumb) { // with the token in a header: a blob: URL for the page
    const key = file + (thumb ? '#t' : '');
    if (!media.has(key)) {
      media.set(key, fetch(`${hub}/api/widget/media/${encodeURIComponent(file)}${thumb ? '?size=thumb' : ''}`, { credentials: 'omit', headers: { authorization: `Bearer ${token}` } })
        .then((r) => { if (!r.ok) throw new Error(r.status); return r.blob(); })
        .then((b) => URL.createObjectURL(b))
        .catch((e) => { media.delete(key); throw e; }));
    }
    return media.get(key);
  }

  function forgetMedia() {
    media.forEach((p) => p.then(URL.revokeObjectURL, () => {}));
    media.clear();
  }

  function attachment(a) { // only the hub's own files are loaded; anything else is its name
    const box = document.createElement('div'), name = a.name || t('attachment');
    box.className = 'a';
    box.dataset.sc = 'attachment';
    box.dataset.type = a.type;
    box.dataset.state = a.state || '';
    if (a.state !== 'ready' || !a.file) {
      box.textContent = a.state === 'pending' ? `${name} · ${t('downloading')}` : a.state ? `${name} · ${t('gone')}` : `[${name}]`;
      return box;
    }
    const image = a.type === 'image' || a.type === 'sticker', tag = image ? 'img' : /^(audio|video)$/.test(a.type) ? a.type : 'a';
    const node = box.appendChild(document.createElement(tag));
    if (tag === 'a') { node.textContent = name; node.download = name; }
    if (image) { node.alt = name; node.onclick = () => fetchMedia(a.file).then((u) => window.open(u, '_blank', 'noopener')); }
    if (tag === 'audio' || tag === 'video') node.controls = true;
    fetchMedia(a.file, image && a.thumbnail).then((u) => { node[tag === 'a' ? 'href' : 'src'] = u; }, () => { box.textContent = `${name} · ${t('gone')}`; });
    return box;
  }

  function body(b, m) { // a message's text and attachments into its bubble
    b.textContent = m.deleted ? '—' : '';
    if (!m.deleted) linked(b, m.text || '');
    if (!m.deleted) (m.attachments || []).forEach((a) => b.appendChild(attachment(a)));
  }

  // The emoji picker: a built-in grid; arrows move, Enter inserts at the caret, Escape closes.
  const EMOJI = [['😀', 'grinning face', 'sırıtan yüz'], ['😂', 'tears of joy', 'sevinç gözyaşları'], ['😊', 'smiling face', 'gülümseyen yüz'],
    ['😍', 'heart eyes', 'kalp gözler'], ['😉', 'winking face', 'göz kırpan yüz'], ['🤔', 'thinking face', 'düşünen yüz'],
    ['😢', 'crying face', 'ağlayan yüz'], ['😮', 'surprised face', 'şaşkın yüz'], ['👍', 'thumbs up', 'beğendim'],
    ['👎', 'thumbs down', 'beğenmedim'], ['👏', 'clapping', 'alkış'], ['🙏', 'thank you', 'teşekkürler'],
    ['👋', 'waving hand', 'el sallama'], ['👌', 'OK hand', 'tamam işareti'], ['❤️', 'red heart', 'kırmızı kalp'],
    ['🔥', 'fire', 'ateş'], ['🎉', 'party popper', 'konfeti'], ['⭐', 'star', 'yıldız'], ['✅', 'check mark', 'onay işareti'],
    ['❓', 'question mark', 'soru işareti'], ['📦', 'package', 'paket'], ['🚚', 'delivery truck', 'kargo kamyonu'],
    ['💳', 'credit card', 'kredi kartı'], ['☕', 'coffee', 'kahve']];
  const emojiGrid = $('emoji-grid');
  const emojiCells = EMOJI.map(([e]) => { const b = document.createElement('button'); b.type = 'button'; b.textContent = e; b.tabIndex = -1; b.setAttribute('role', 'gridcell'); return b; });
  for (let r = 0; r < EMOJI.length; r += 8) {
    const row = document.createElement('div');
    row.setAttribute('role', 'row');
    emojiCells.slice(r, r + 8).forEach((b) => row.appendChild(b));
    emojiGrid.appendChild(row);
  }
  let emojiAt = 0, emojiCaret = [0, 0];
  emojiCells.forEach((b, i) => { b.onclick = () => emojiPick(i); });
  function emojiFocus(i) { emojiCells[emojiAt].tabIndex = -1; emojiAt = Math.max(0, Math.min(emojiCells.length - 1, i)); emojiCells[emojiAt].tabIndex = 0; emojiCells[emojiAt].focus(); }
  function emojiOpen() { emojiCaret = [input.selectionStart, input.selectionEnd]; emojiGrid.hidden = false; $('emoji').setAttribute('aria-expanded', 'true'); emojiFocus(emojiAt); }
  function emojiClose(back) { emojiGrid.hidden = true; $('emoji').setAttribute('aria-expanded', 'false'); if (back) $('emoji').focus(); }
  function emojiPick(i) {
    emojiClose(false);
    const [start, end] = emojiCaret, e = EMOJI[i][0];
    input.value = input.value.slice(0, start) + e + input.value.slice(end);
    input.focus();
    input.selectionStart = input.selectionEnd = start + e.length;
    input.oninput();
  }

  // Only http(s) addresses become links (never javascript: or data:), opened with noopener.
  function linked(b, text) {
    let at = 0;
    text.replace(/\bhttps?:\/\/[^\s<>"']+/gi, (raw, index) => {
      const url = raw.replace(/[.,;:!?)\]}'"]+$/, '');
      let href = null;
      try { const u = new URL(url); if (u.protocol === 'https:' || u.protocol === 'http:') href = u.href; } catch (e) { /* text */ }
      if (!href) return raw;
      b.appendChild(document.createTextNode(text.slice(at, index)));
      const a = document.createElement('a');
      a.href = href; a.target = '_blank'; a.rel = 'noopener noreferrer'; a.textContent = url;
      b.appendChild(a);
      at = index + url.length;
      return raw;
    });
    b.appendChild(document.createTextNode(text.slice(at)));
  }

  function meta(m) {
    const d = new Date(m.sent_at);
    const parts = [];
    if (m.direction === 'out' && m.sender && m.sender.name) parts.push(m.sender.name);
    else if (m.direction === 'out' && m.sender && m.sender.type === 'system') parts.push(t('auto'));
    if (!isNaN(d)) parts.push(d.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' }));
    if (m.direction === 'in') parts.push(readUpTo && m.event_id && !after(m.event_id, readUpTo) ? t('read') : t('sent'));
    return parts.join(' · ');
  }

  function show(m, fresh) {
    if (!m || m.note) return;
    const known = seen.get(m.id);
    if (known) return;
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const p = m.client_id && outbox.get(m.client_id);
    const el = p ? p.el : bubble(m.direction, '', '');
    body(el.firstChild, m);
    outbox.delete(m.client_id);
    if (m.client_id) socket.settle(m.client_id);
    el.className = 'm';
    el.dataset.id = m.id;
    el.dataset.at = String(Date.parse(m.sent_at) || Date.now());
    if (m.event_id) el.dataset.event = m.event_id;
    el.m = m;
    el.lastChild.textContent = meta(m);
    seen.set(m.id, el);
    if (!p) { // in time order, so that history pages and live events interleave rightly
      let before = list.lastElementChild;
      while (before && before.dataset.sc === 'message' && Number(before.dataset.at) > Number(el.dataset.at)) before = before.previousElementSibling;
      list.insertBefore(el, before ? before.nextSibling : null);
    }
    if (m.direction === 'out' && m.sender && m.sender.name) agent(m.sender.name);
    if (fresh && m.direction === 'out') {
      typingEl.hidden = true;
      emit('message:received', { id: m.id, text: m.text, sender: m.sender && m.sender.name, sent_at: m.sent_at });
      if (!open || document.hidden) { unread += 1; badge.textContent = unread; badge.hidden = open; flash(); }
    }
    if (stick || p) bottom();
    showPrechat();
  }

  function agent(name) {
    $('avatar').textContent = name.trim().split(/\s+/).slice(0, 2).map((w) => w[0]).join('').toUpperCase();
    put('sessionStorage', 'agent', name);
  }

  function flash() { // the page title blinks while there are unread replies
    if (flashTimer) return;
    let on = false;
    flashTimer = setInterval(() => {
      if (!unread) { clearInterval(flashTimer); flashTimer = 0; document.title = pageTitle; return; }
      on = !on;
      document.title = on ? `(${unread}) ${t('newMessage')}` : pageTitle;
    }, 1000);
  }

  function markRead() {
    if (!open || document.hidden) return;
    unread = 0;
    badge.hidden = true;
    if (socket.cursor && seen.size) socket.send({ type: 'read', up_to: socket.cursor });
  }

  async function fetchConfig() {
    let known = false;
    try {
      const r = await fetch(`${hub}/api/widget/config?channel=${encodeURIComponent(channel)}`, { credentials: 'omit' });
      if (r.status === 403 || r.status === 404) await refusal(r);
      if (r.ok) { config = Object.assign(config, await r.json()); known = true; }
    } catch (e) { /* the hub is unreachable: defaults, and the socket retries */ }
    // Unknown settings keep to memory too, until the visitor writes.
    if (known && (!config.consent_required || get('localStorage', 'token'))) startKeeping();
    settled = true;
    localize();
    wrap.hidden = !!refused;
  }

  // The hub refuses this page for good (an unknown channel, an origin the channel does not
  // allow, a bad identity): said once on the console, with the hub's code. On a foreign origin
  // the widget could never send, so it shows nothing at all.
  async function refusal(r) {
    let error = {};
    try { error = (await r.json()).error || {}; } catch (e) { /* not JSON */ }
    deny(error.code || `http_${r.status}`, error.message || '');
  }
  function deny(code, message) {
    stopped = true;
    if (code !== 'origin_not_allowed') return warnOnce(code, message);
    refused = { code, message };
    socket.close();
    if (open) setOpen(false);
    wrap.hidden = true;
    warnOnce(code, message);
  }
  const warned = new Set();
  function warnOnce(code, message) {
    if (warned.has(code)) return;
    warned.add(code);
    console.warn(`[SosyoChat] ${code}: ${message}`);
  }

  async function fetchToken() {
    const previous = get('localStorage', 'token');
    const body = identity && identity.user_id ? { channel, user_id: identity.user_id, user_hash: identity.user_hash || '' }
      : previous ? { channel, token: previous } : { channel };
    const r = await post('/api/widget/token', body);
    if (r.status === 403 || r.status === 404) await refusal(r); // origin not allowed, unknown channel, bad identity
    if (!r.ok) throw new Error(`token request answered ${r.status}`);
    const j = await r.json();
    token = j.token;
    put('localStorage', 'token', token);
    if (profile) { const body = Object.assign({ token }, profile); profile = null; post('/api/widget/profile', body).catch(() => {}); }
    tellVisitor();
    if (j.conversation_id !== conversation) { // another visitor: drop what was the old one's
      conversation = j.conversation_id;
      socket.cursor = null; loaded = false;
      put('sessionStorage', 'cursor', null);
      put('sessionStorage', 'conversation', conversation);
      seen.forEach((el) => el.remove());
      seen.clear();
      forgetMedia();
    }
  }

  // What agents see of the visitor (docs/privacy.md): this page, the one before it, the
  // language and time zone, once per page and token; the hub reads the browser from the
  // request itself. Nothing at all when the channel turns it off.
  let toldVisitor = null;
  function tellVisitor() {
    if (config.visitor_info === false || toldVisitor === token) return;
    toldVisitor = token;
    let zone = null;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { /* none */ }
    const cut = (v, n) => (v ? String(v).slice(0, n) : null);
    post('/api/widget/visitor', {
      token, page_url: cut(location.href, 2000), page_title: cut(document.title, 300),
      referrer: cut(document.referrer, 2000), language: cut(navigator.language, 35), time_zone: cut(zone, 64),
    }).catch(() => {});
  }

  async function loadHistory() { // the whole conversation, from the database, before live events
    let before = null;
    for (let page = 0; page < 20; page += 1) {
      const r = await post('/api/widget/history', before ? { token, before } : { token });
      if (!r.ok) return;
      const j = await r.json();
      // Kept by the hub: a reloaded widget still shows which messages an agent has read.
      if (j.agent_read_up_to && (!readUpTo || after(j.agent_read_up_to, readUpTo))) readUpTo = j.agent_read_up_to;
      j.items.forEach((m) => show(m, false));
      if (!j.next_before) break;
      before = j.next_before;
    }
    loaded = true;
    bottom();
  }

  const socket = hubSocket({ // reconnects with backoff and resumes from the cursor by itself
    url: hub.replace(/^http/, 'ws') + '/ws/visitor',
    async token() {
      try {
        if (!token) await fetchToken();
      } catch (e) {
        if (!stopped) { console.warn('[SosyoChat]', e.message); throw e; } // try again later
        status('off', 'unavailable'); // the refusal was said once, with its code
        return null;
      }
      return token;
    },
    onConnecting: () => { if (!dropped) status('connecting', 'connecting'); },
    onRetry: () => status(dropped ? 'offline' : 'connecting', dropped ? 'offline' : 'reconnecting'),
    onClose(code) {
      typingOn = false;
      if (code === 4401 || code === 4403 || code === 4410) return; // a new token, or refused: not offline
      dropped = true;
      status('offline', 'offline');
    },
    onCursorTooOld() { put('sessionStorage', 'cursor', null); loaded = false; }, // reload history
    onDenied(code) {
      if (code === 4401) token = null; // fetch a fresh one
      if (code !== 4403) return true;
      stopped = true;
      status('off', 'unavailable');
      return false;
    },
    onWelcome: onFrame,
    onEvent: onFrame,
    onFrame,
  });
  function connect() { if (!stopped) socket.connect(); }

  async function onFrame(f) {
    const p = f.client_id && outbox.get(f.client_id);
    if (f.type === 'welcome' || f.type === 'event') put('sessionStorage', 'cursor', socket.cursor);
    if (f.type === 'welcome') { // the socket resends the outbox after it; the hub dedupes by client_id
      dropped = false;
      status(stateOfHours(), stateOfHours());
      if (!f.resumed || !loaded) await loadHistory();
      markRead();
    } else if (f.type === 'event' && f.name === 'message.created') {
      show(Object.assign({}, f.data.message, { event_id: f.id }), true);
      markRead();
    } else if (f.type === 'event' && f.name === 'message.updated' && f.data.changes && f.data.changes.attachments) {
      const el = seen.get(f.data.message_id); // the files were fetched (or could not be): the whole new list
      if (el && el.m) { el.m.attachments = f.data.changes.attachments; body(el.firstChild, el.m); }
    } else if (f.type === 'event' && f.name === 'typing' && f.data.by && f.data.by.type === 'agent') {
      clearTimeout(agentTimer);
      typingEl.textContent = t('typing', { n: f.data.by.name || t('agent') });
      typingEl.hidden = !f.data.on;
      if (f.data.on) agentTimer = setTimeout(() => { typingEl.hidden = true; }, 10000);
    } else if (f.type === 'event' && f.name === 'conversation.updated' && f.data.agent_read_up_to) {
      if (!readUpTo || after(f.data.agent_read_up_to, readUpTo)) readUpTo = f.data.agent_read_up_to;
      seen.forEach((el) => { if (el.m && el.m.direction === 'in') el.lastChild.textContent = meta(el.m); });
    } else if (f.type === 'error' && f.code === 'origin_not_allowed') {
      deny(f.code, f.message || '');
    } else if (f.type === 'error' && p) {
      outbox.delete(f.client_id);
      socket.settle(f.client_id);
      p.el.className = 'm f';
      p.el.lastChild.textContent = t('failed', { m: f.message });
    }
  }

  function send(text) {
    if (!text) return;
    startKeeping();
    const id = uid();
    const el = list.appendChild(bubble('in', text, t('sending')));
    el.className = 'm s';
    bottom();
    outbox.set(id, { el });
    socket.queue(id, { type: 'message.send', client_id: id, text }); // sent now if live, else after welcome
    typing(false);
    emit('message:sent', { client_id: id, text });
    if (!socket.live) { stopped = false; connect(); }
  }

  function fail(id, why) {
    const p = outbox.get(id);
    if (!p) return;
    outbox.delete(id);
    p.el.className = 'm f';
    p.el.lastChild.textContent = t('failed', { m: why });
  }

  async function upload(chosen) { // files as one message, with the upload's progress in its bubble
    const files = [...chosen].slice(0, 10);
    if (!files.length) return;
    startKeeping();
    const id = uid(), el = list.appendChild(bubble('in', files.map((f) => f.name).join(', '), t('uploading', { p: 0 })));
    const bar = el.firstChild.appendChild(document.createElement('progress'));
    el.className = 'm s';
    bar.dataset.sc = 'progress';
    bar.max = 100;
    bar.value = 0;
    bottom();
    outbox.set(id, { el });
    try { if (!token) await fetchToken(); } catch (e) { return fail(id, t('unavailable')); }
    const form = new FormData(), x = new XMLHttpRequest();
    form.append('client_id', id);
    files.forEach((f) => form.append('attachments', f, f.name));
    x.open('POST', hub + '/api/widget/messages');
    x.setRequestHeader('Authorization', 'Bearer ' + token);
    x.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      bar.value = Math.round((e.loaded * 100) / e.total);
      el.lastChild.textContent = t('uploading', { p: bar.value });
    };
    x.onload = () => {
      if (x.status < 300) { if (outbox.has(id)) el.lastChild.textContent = t('sending'); return; }
      let error = {};
      try { error = JSON.parse(x.responseText).error || {}; } catch (e) { /* not JSON */ }
      fail(id, x.status === 413 ? t('big') : x.status === 415 && error.code === 'unsupported_media_type' ? t('type') : x.status === 429 ? t('busy') : error.message || String(x.status));
    };
    x.onerror = () => fail(id, t('unavailable'));
    x.send(form);
    emit('message:sent', { client_id: id, files: files.length });
    if (!socket.live) { stopped = false; connect(); }
  }

  function typing(on) { // one "on" per burst; "off" after 3 s without a key, or on send
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(typing, 3000, false);
    if (socket.live && on !== typingOn) socket.send({ type: 'typing', on: typingOn = on });
  }

  function grow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  async function startChat() { // the pre-chat form: who the visitor is, then the composer
    const name = $('prechat-name').value.trim(), email = $('prechat-email').value.trim();
    const error = $('prechat-error');
    error.hidden = true;
    if (!name) { error.textContent = t('needName'); error.hidden = false; return; }
    if ((email || config.prechat.require_email) && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) { error.textContent = t('badEmail'); error.hidden = false; return; }
    startKeeping();
    try {
      if (!token) await fetchToken();
      const r = await post('/api/widget/profile', { token, name, email: email || null });
      if (!r.ok) throw new Error(String(r.status));
    } catch (e) {
      error.textContent = t('unavailable'); error.hidden = false; return;
    }
    put('localStorage', 'profile', '1');
    showPrechat();
    input.focus();
    connect();
  }

  function setOpen(value, focus) {
    if (refused && value) return;
    open = value;
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', open);
    if (keep) put('sessionStorage', 'open', open ? 1 : null);
    if (!open) { if (focus) launcher.focus(); return; }
    markRead();
    showPrechat();
    stopped = false;
    if (!pre.hidden) { if (focus) $('prechat-name').focus(); return; }
    if (!settled) return; // mount opens it again once the settings are in
    if (keep || token || !config.consent_required) connect(); else status(stateOfHours(), stateOfHours());
    bottom();
    if (focus) input.focus();
  }

  function reset() { // forget this visitor on this device
    socket.close();
    token = null; socket.cursor = null; conversation = null; loaded = false; identity = null; readUpTo = null; unread = 0;
    ['token', 'profile'].forEach((k) => put('localStorage', k, null));
    ['cursor', 'conversation', 'open', 'agent'].forEach((k) => put('sessionStorage', k, null));
    Object.keys(memory).forEach((k) => delete memory[k]);
    seen.forEach((el) => el.remove());
    seen.clear();
    forgetMedia();
    outbox.forEach((o, id) => { o.el.remove(); socket.settle(id); });
    outbox.clear();
    badge.hidden = true;
    $('avatar').textContent = '';
    keep = !config.consent_required;
    showPrechat();
    if (open) connect();
  }

  launcher.onclick = () => setOpen(!open, true);
  $('close').onclick = () => setOpen(false, true);
  root.addEventListener('keydown', (e) => { // Escape closes the panel, and the launcher has the focus again
    if (e.key === 'Escape' && open && !e.isComposing) { e.preventDefault(); setOpen(false, true); }
  });
  composer.onsubmit = (e) => { e.preventDefault(); const text = input.value.trim(); input.value = ''; grow(); send(text); };
  pre.onsubmit = (e) => { e.preventDefault(); startChat(); };
  input.onkeydown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); composer.onsubmit(e); }
  };
  input.oninput = () => { grow(); typing(!!input.value.trim()); };
  const file = $('file');
  $('attach').onclick = () => file.click();
  $('emoji').onclick = () => (emojiGrid.hidden ? emojiOpen() : emojiClose(true));
  emojiGrid.onkeydown = (e) => {
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 };
    if (e.key in moves) { e.preventDefault(); emojiFocus(emojiAt + moves[e.key]); } else if (e.key === 'Escape') {
      e.preventDefault(); e.stopPropagation(); emojiClose(true); // the grid only, not the chat
    } else if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); emojiPick(emojiAt); }
  };
  file.onchange = () => { upload(file.files); file.value = ''; };
  const carries = (e) => e.dataTransfer && [...e.dataTransfer.types].includes('Files') && !composer.hidden;
  panel.ondragover = (e) => { if (carries(e)) { e.preventDefault(); panel.classList.add('dr'); } };
  panel.ondragleave = (e) => { if (!panel.contains(e.relatedTarget)) panel.classList.remove('dr'); };
  panel.ondrop = (e) => { panel.classList.remove('dr'); if (carries(e)) { e.preventDefault(); upload(e.dataTransfer.files); } };
  addEventListener('online', () => { if (!stopped && (open || token)) socket.retryNow(); });
  addEventListener('offline', () => { if (socket.live || dropped) status('offline', 'offline'); });
  document.addEventListener('visibilitychange', markRead);

  window.SosyoChat = {
    open: () => setOpen(true, true),
    close: () => setOpen(false),
    toggle: () => setOpen(!open, true),
    identify(who) {
      if (!who || !who.user_id) return;
      const changed = !identity || identity.user_id !== String(who.user_id);
      identity = { user_id: String(who.user_id), user_hash: String(who.user_hash || '') };
      if (changed) { // another person: their own conversation, from the hub
        socket.close();
        token = null; stopped = false;
        if (open || get('localStorage', 'token')) connect();
      }
      if (who.name || who.email) {
        profile = { name: who.name ? String(who.name) : null, email: who.email ? String(who.email) : null };
        put('localStorage', 'profile', '1');
        if (token && !changed) { const body = Object.assign({ token }, profile); profile = null; post('/api/widget/profile', body).catch(() => {}); }
      }
    },
    reset,
    on(name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    off(name, fn) { listeners[name] = (listeners[name] || []).filter((x) => x !== fn); },
  };

  const mount = async () => {
    document.body.appendChild(host);
    // The launcher waits for the settings (a refused page shows none), but not for ever.
    setTimeout(() => { if (!refused) wrap.hidden = false; }, SETTINGS_WAIT_MS);
    await fetchConfig();
    const cursor = get('sessionStorage', 'cursor');
    socket.cursor = /^\d{1,20}-\d{1,20}$/.test(cursor || '') ? cursor : null;
    conversation = get('sessionStorage', 'conversation');
    if (!socket.cursor) conversation = null;
    const name = get('sessionStorage', 'agent');
    if (name) agent(name);
    showPrechat();
    if (open || get('sessionStorage', 'open')) setOpen(true); // opened while the settings loaded
    else if (get('localStorage', 'token') || identity) connect(); // a returning visitor hears replies at once
    emit('ready', { channel });
  };
  if (document.body) mount(); else addEventListener('DOMContentLoaded', mount);
})();
