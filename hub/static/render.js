/* How one message looks in the inbox: text, attachments, comments, reactions, edits, unsends,
 * notes and the delivery status of what we sent. Everything from a message reaches the page
 * through textContent or a checked http(s) URL; nothing is ever parsed as HTML. */
import { el, clock, ms } from './common.js';

const safeUrl = (url) => {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch (e) {
    return null;
  }
};

function link(url, text) {
  const href = safeUrl(url);
  if (!href) return el('span', 'muted', text);
  const a = el('a', null, text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

function size(bytes) {
  if (!bytes && bytes !== 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function card(type, title, parts) {
  const node = el('div', `card att-${type}`);
  node.dataset.ib = 'attachment';
  node.dataset.type = type;
  node.append(el('strong', null, title), ...parts.filter(Boolean));
  return node;
}

export function attachmentEl(a, t) {
  const type = a.type || 'unsupported';
  const url = safeUrl(a.url);
  if ((type === 'image' || type === 'sticker') && url) {
    const figure = el('figure', `att att-${type}`);
    figure.dataset.ib = 'attachment';
    figure.dataset.type = type;
    const img = el('img');
    img.src = url;
    img.alt = a.caption || a.name || t(type);
    img.loading = 'lazy';
    img.referrerPolicy = 'no-referrer';
    const anchor = link(url, '');
    anchor.append(img);
    figure.append(anchor);
    if (a.caption) figure.append(el('figcaption', null, a.caption));
    return figure;
  }
  if (type === 'location' && a.latitude != null && a.longitude != null) {
    const where = `${Number(a.latitude).toFixed(5)}, ${Number(a.longitude).toFixed(5)}`;
    const map = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(a.latitude)}&mlon=${encodeURIComponent(a.longitude)}#map=16/${encodeURIComponent(a.latitude)}/${encodeURIComponent(a.longitude)}`;
    return card(type, t('location'), [el('span', null, a.name || a.caption || where), link(map, where)]);
  }
  if (type === 'share' || type === 'story') {
    return card(type, t(type), [a.caption ? el('span', null, a.caption) : null, url ? link(url, t('open-link')) : null]);
  }
  if (type === 'contact') {
    return card(type, t('contact'), [el('span', null, a.name || a.caption || '')]);
  }
  if (type === 'video' || type === 'audio' || type === 'file') {
    const label = a.name || t(type);
    const extra = [a.mime_type, size(a.size)].filter(Boolean).join(' · ');
    return card(type, t(type), [url ? link(url, label) : el('span', null, label), extra ? el('small', 'muted', extra) : null,
      a.caption ? el('span', null, a.caption) : null]);
  }
  if (type !== 'unsupported' && url) return card(type, t(type), [link(url, a.name || t('open-link'))]);
  return card('unsupported', t('unsupported'), []);
}

/* The message element: .bubble holds the content, .meta the sender/time/status line. */
export function messageEl(m, t) {
  const node = el('div', 'msg');
  node.dataset.ib = 'message';
  node.dataset.direction = m.direction;
  node.append(el('div', 'bubble'), el('div', 'meta'));
  fill(node, m, t);
  return node;
}

export function fill(node, m, t) {
  node.dataset.id = m.id || node.dataset.id || '';
  node.dataset.at = String(ms(m.sent_at) || Number(node.dataset.at) || Date.now());
  if (m.event_id) node.dataset.event = m.event_id;
  if (m.platform_message_id) node.dataset.pmid = m.platform_message_id;
  // What an automation rule did: a note from the hub itself, shown as a line of activity.
  const activity = !!m.note && !!m.sender && m.sender.type === 'system';
  node.classList.toggle('note', !!m.note);
  node.classList.toggle('activity', activity);
  node.classList.toggle('comment', m.kind === 'comment');
  node.classList.toggle('deleted', !!m.deleted);
  if (m.note) node.dataset.note = 'true';
  const bubble = node.querySelector('.bubble');
  bubble.replaceChildren();
  if (m.note) bubble.append(el('span', 'tag note-tag', t(activity ? 'automation' : 'private-note')));
  if (m.kind === 'comment' && m.direction === 'in') bubble.append(el('span', 'tag comment-tag', t('comment')));
  if (m.private_reply) bubble.append(el('span', 'tag', t('private-reply-tag')));
  if (m.deleted) {
    bubble.append(el('em', 'muted', t('unsent')));
  } else {
    if (m.text) bubble.append(el('div', 'text', m.text));
    (m.attachments || []).forEach((a) => bubble.append(attachmentEl(a, t)));
    if (!m.text && !(m.attachments || []).length) {
      const story = m.raw && (m.raw.field === 'mentions' || m.raw.media_id) ? t('story-mention') : t('unsupported');
      bubble.append(card('unsupported', story, []));
    }
  }
  const reactions = el('div', 'reactions');
  reactions.dataset.ib = 'reactions';
  (m.reactions || []).forEach((r) => {
    const emoji = r.emoji || (r.reaction === 'love' ? '❤️' : r.reaction) || '';
    if (emoji) reactions.append(el('span', 'reaction', emoji));
  });
  if (reactions.childElementCount) bubble.append(reactions);
  meta(node, m, t);
}

export function meta(node, m, t) {
  const who = m.sender && (m.sender.name || (m.sender.type === 'agent' ? t('agent') : ''));
  const parts = [who, clock(m.sent_at)];
  if (m.edited) parts.push(t('edited'));
  const line = node.querySelector('.meta');
  line.replaceChildren(el('span', null, parts.filter(Boolean).join(' · ')));
  if (m.direction === 'out' && !m.note && m.status) {
    const status = el('span', `delivery delivery-${m.status}`);
    status.dataset.ib = 'delivery';
    status.dataset.status = m.status;
    status.textContent = m.status === 'failed'
      ? t('not-sent', { why: (m.error && m.error.message) || t('status-failed') })
      : t(`status-${m.status}`);
    line.append(status);
  }
}

const ORDER = { pending: 1, sent: 2, delivered: 3, read: 4 };

/* Applies a message.updated `changes` to a message object (the same rules as the worker). */
export function applyChanges(m, changes) {
  if (changes.reaction && typeof changes.reaction === 'object') {
    const r = changes.reaction;
    m.reactions = (m.reactions || []).filter((x) => x.by !== r.by);
    if (r.action !== 'unreact') m.reactions.push({ emoji: r.emoji, reaction: r.reaction, by: r.by });
  }
  if ('text' in changes) m.text = changes.text;
  if (changes.platform_message_id) m.platform_message_id = changes.platform_message_id;
  if (changes.edited) m.edited = true;
  if (changes.deleted) { m.deleted = true; m.text = null; m.attachments = []; }
  if (typeof changes.status === 'string') {
    if (changes.status === 'failed' && m.status !== 'delivered' && m.status !== 'read') {
      m.status = 'failed';
      m.error = changes.error || null;
    } else if ((ORDER[changes.status] || 0) > (ORDER[m.status] || 0)) {
      m.status = changes.status;
    }
  }
  return m;
}
