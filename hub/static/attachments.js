/* How a message's attachments look in the inbox. Only the hub's own files are ever loaded by
 * the page (images, players): a URL that a visitor or a platform gave is shown as a link for the
 * agent to open on purpose, never fetched on its own, and only http(s) links are links at all.
 * A file the hub is still fetching says so, one it keeps only as the platform's link says why,
 * and one that cannot be had says "not available" with the reason. */
import { el } from './common.js';

export const safeUrl = (url) => {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch (e) {
    return null;
  }
};

/* The hub's own URL of a file it keeps (state ready, same origin, the file's own path), or
 * null. Senders cannot set state or file (the hub refuses such frames), so a URL they give is
 * never taken for one of ours. */
export function hubUrl(a) {
  if (!a || !a.url || a.state !== 'ready' || !a.file) return null;
  try {
    const u = new URL(a.url, location.href);
    return u.origin === location.origin && u.pathname.startsWith('/api/') && u.pathname.endsWith(`/${a.file}`) ? u.href : null;
  } catch (e) {
    return null;
  }
}

export function link(url, text) {
  const href = safeUrl(url);
  if (!href) return el('span', 'muted', text);
  const a = el('a', null, text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.referrerPolicy = 'no-referrer';
  return a;
}

export function size(bytes) {
  if (!bytes && bytes !== 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function card(type, title, parts) {
  const node = el('div', `card att-${type}`);
  node.dataset.ib = 'attachment';
  node.dataset.type = type;
  node.append(el('strong', null, title), ...parts.filter(Boolean));
  return node;
}

/* The full-size image, over the page; Escape or a click closes it. */
let box = null;
export function lightbox(url, alt, t) {
  if (!box) {
    box = el('dialog', 'lightbox');
    box.dataset.ib = 'lightbox';
    const img = el('img');
    img.referrerPolicy = 'no-referrer';
    const bar = el('div', 'lightbox-bar');
    const open = el('a', null, t('open-new-tab'));
    open.target = '_blank';
    open.rel = 'noopener noreferrer';
    const close = el('button', 'ghost', t('close'));
    close.type = 'button';
    close.dataset.ib = 'lightbox-close';
    close.addEventListener('click', () => box.close());
    bar.append(open, close);
    box.append(img, bar);
    box.addEventListener('click', (e) => { if (e.target === box || e.target === img) box.close(); });
    document.body.append(box);
  }
  box.querySelector('img').src = url;
  box.querySelector('img').alt = alt;
  box.querySelector('a').href = url;
  box.showModal();
}

const named = (a, t) => a.name || t(a.type || 'file');
const details = (a) => [a.mime_type, size(a.size)].filter(Boolean).join(' · ');

/* A file the hub keeps: the picture, a player, or a download. */
function kept(a, url, t) {
  const type = a.type;
  if (type === 'image' || type === 'sticker') {
    const figure = el('figure', `att att-${type}`);
    figure.dataset.ib = 'attachment';
    figure.dataset.type = type;
    figure.dataset.state = 'ready';
    const img = el('img');
    img.src = a.thumbnail ? `${url}${url.includes('?') ? '&' : '?'}size=thumb` : url;
    img.alt = a.caption || a.name || t(type);
    img.loading = 'lazy';
    img.referrerPolicy = 'no-referrer';
    if (a.width && a.height) { img.width = Math.min(a.width, 260); img.height = Math.round(img.width * a.height / a.width); }
    const anchor = link(url, '');
    anchor.dataset.ib = 'open-image';
    anchor.setAttribute('aria-label', t('open-full-size'));
    anchor.addEventListener('click', (e) => {
      if (e.ctrlKey || e.metaKey || e.shiftKey || e.button) return; // a new tab, as asked
      e.preventDefault();
      lightbox(url, img.alt, t);
    });
    anchor.append(img);
    figure.append(anchor);
    if (a.caption) figure.append(el('figcaption', null, a.caption));
    return figure;
  }
  if (type === 'audio' || type === 'video') {
    const player = el(type);
    player.controls = true;
    player.preload = 'metadata';
    player.src = url;
    player.dataset.ib = 'player';
    const save = link(url, named(a, t));
    save.download = a.name || '';
    return card(type, t(type), [player, save, details(a) ? el('small', 'muted', details(a)) : null,
      a.caption ? el('span', null, a.caption) : null]);
  }
  const save = link(url, named(a, t));
  save.download = a.name || '';
  save.dataset.ib = 'download';
  return card(type, t(type), [save, details(a) ? el('small', 'muted', details(a)) : null,
    a.caption ? el('span', null, a.caption) : null]);
}

export function attachmentEl(a, t) {
  const type = a.type || 'unsupported';
  const url = hubUrl(a);
  if (type === 'location' && a.latitude != null && a.longitude != null) {
    const where = `${Number(a.latitude).toFixed(5)}, ${Number(a.longitude).toFixed(5)}`;
    const map = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(a.latitude)}&mlon=${encodeURIComponent(a.longitude)}#map=16/${encodeURIComponent(a.latitude)}/${encodeURIComponent(a.longitude)}`;
    return card(type, t('location'), [el('span', null, a.name || a.caption || where), link(map, where)]);
  }
  if (type === 'share' || type === 'story') {
    return card(type, t(type), [a.caption ? el('span', null, a.caption) : null, a.url ? link(a.url, t('open-link')) : null]);
  }
  if (type === 'contact') {
    return card(type, t('contact'), [el('span', null, a.name || a.caption || '')]);
  }
  if (type === 'unsupported') return card('unsupported', t('unsupported'), []);
  let node;
  if (a.state === 'pending' || a.state === 'uploading') { // uploading: an agent's own, on its way
    node = card(type, t(type), [el('span', null, named(a, t)), el('small', 'muted', t(`media-${a.state}`))]);
  } else if (a.state === 'unavailable') {
    node = card(type, t(type), [el('span', null, named(a, t)),
      el('small', 'muted', a.reason ? t('media-unavailable-why', { why: a.reason }) : t('media-unavailable'))]);
  } else if (url) {
    node = kept(a, url, t);
  } else {
    // The platform's or the sender's own link: shown, never loaded.
    node = card(type, t(type), [a.url ? link(a.url, named(a, t)) : el('span', null, named(a, t)),
      details(a) ? el('small', 'muted', details(a)) : null,
      a.state === 'link' ? el('small', 'muted', a.reason ? t('media-link-why', { why: a.reason }) : t('media-link')) : null,
      a.caption ? el('span', null, a.caption) : null]);
  }
  node.dataset.state = a.state || (url ? 'ready' : 'link');
  return node;
}
