/* How one message looks in the inbox: text, attachments, comments, reactions, edits, unsends,
 * notes and the delivery status of what we sent. Everything from a message reaches the page
 * through textContent or a checked http(s) URL; nothing is ever parsed as HTML. Attachments are
 * attachments.js's; their elements are kept while they do not change, so a status update
 * neither reloads a picture nor stops a voice note that is playing. */
import { el, clock, ms } from './common.js';
import { attachmentEl, card } from './attachments.js';
import { linkedText } from './links.js';

/* What a page adds to a message after it is drawn (the inbox: a comment's moderation buttons,
 * a note's highlighted @mentions), in the order they were set. */
const decorators = [];
export function setDecorator(fn) { decorators.push(fn); }

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
  node.classList.toggle('hidden-comment', !!m.hidden && !m.deleted);
  node.dataset.hidden = String(!!m.hidden);
  if (m.note) node.dataset.note = 'true';
  const bubble = node.querySelector('.bubble');
  bubble.replaceChildren();
  if (m.note) bubble.append(el('span', 'tag note-tag', t(activity ? 'automation' : 'private-note')));
  if (m.kind === 'comment' && m.direction === 'in') bubble.append(el('span', 'tag comment-tag', t('comment')));
  if (m.private_reply) bubble.append(el('span', 'tag', t('private-reply-tag')));
  if (m.story) bubble.append(tagged('story', t(`story-${m.story}-tag`)));
  if (m.standby) bubble.append(tagged('standby', t('standby-tag')));
  if (m.referral) bubble.append(referralEl(m.referral, t));
  const renamed = m.group && m.group.renamed;
  if (renamed) bubble.append(el('em', 'muted', t('group-renamed', { title: m.group.title || '' })));
  if (m.hidden && !m.deleted) bubble.append(el('span', 'tag hidden-tag', t('comment-hidden-tag')));
  if (m.deleted) {
    bubble.append(el('em', 'muted', t(m.kind === 'comment' ? 'comment-deleted' : 'unsent')));
  } else {
    if (m.text) { const text = el('div', 'text'); text.append(linkedText(m.text)); bubble.append(text); }
    const key = JSON.stringify(m.attachments || []);
    if (!node.attached || node.attached.key !== key) node.attached = { key, els: (m.attachments || []).map((a) => attachmentEl(a, t)) };
    bubble.append(...node.attached.els);
    if (!m.text && !(m.attachments || []).length && !renamed && !m.referral) {
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
  decorators.forEach((decorate) => decorate(node, m));
}

function tagged(kind, text) {
  const tag = el('span', `tag ${kind}-tag`, text);
  tag.dataset.ib = kind;
  return tag;
}

/* What brought the contact: an ad (its id and headline) or a post or link. */
function referralEl(r, t) {
  const node = el('div', 'card referral');
  node.dataset.ib = 'referral';
  const from = r.ad_id ? t('referral-ad', { id: r.ad_id }) : t('referral-other', { source: r.source || '' });
  node.append(el('strong', null, from));
  if (r.headline) node.append(el('div', 'referral-headline', r.headline));
  if (r.body) node.append(el('div', 'muted', r.body));
  return node;
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
  if (changes.reaction && typeof changes.reaction === 'object' && !m.deleted) { // an unsent message takes none
    const r = changes.reaction;
    m.reactions = (m.reactions || []).filter((x) => x.by !== r.by);
    if (r.action !== 'unreact') m.reactions.push({ emoji: r.emoji, reaction: r.reaction, by: r.by });
  }
  if ('text' in changes) m.text = changes.text;
  if (changes.platform_message_id) m.platform_message_id = changes.platform_message_id;
  if (changes.edited) m.edited = true;
  if (typeof changes.hidden === 'boolean') m.hidden = changes.hidden;
  if (Array.isArray(changes.attachments)) m.attachments = changes.attachments; // the whole new list
  if (changes.deleted) { m.deleted = true; m.text = null; m.attachments = []; m.reactions = []; }
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
