/* A WhatsApp channel's message templates in the console (Channels): each with its status,
 * language, category and what it takes, and a button that syncs the list from the WhatsApp
 * Business Account now (the workers also sync it every HUB_TEMPLATE_SYNC_S, and WhatsApp's
 * status webhooks change it as they come). */
import { api, el, stamp } from './common.js';

export function templatesSection(channel, { t, problem }) {
  const box = el('div', 'templates');
  box.dataset.ib = 'templates';
  box.hidden = true;
  const head = el('div', 'templates-head');
  const synced = el('small', 'muted');
  synced.dataset.ib = 'templates-synced';
  const sync = el('button', 'ghost small', t('templates-sync'));
  sync.type = 'button';
  sync.dataset.ib = 'templates-sync';
  head.append(el('strong', null, t('templates')), synced, sync);
  const note = el('p', 'notice');
  note.dataset.ib = 'templates-notice';
  note.hidden = true;
  const list = el('ul', 'template-list');
  list.dataset.ib = 'template-list';
  box.append(head, note, list);

  const say = (text) => { note.textContent = text || ''; note.hidden = !text; };

  function item(x) {
    const li = el('li', 'template');
    Object.assign(li.dataset, { ib: 'template', name: x.name, status: x.status });
    const badge = el('span', 'badge', x.status);
    Object.assign(badge.dataset, { ib: 'template-status', health: x.sendable ? 'connected' : 'needs_reconnect' });
    const p = x.parameters;
    const takes = [
      p.header_format && p.header_format !== 'TEXT' ? t('template-takes-media', { kind: p.header_format.toLowerCase() }) : null,
      p.header.length + p.body.length ? t('template-takes-values', { n: p.header.length + p.body.length }) : null,
      p.buttons.some((b) => b.variables) ? t('template-takes-button') : null,
    ].filter(Boolean).join(', ') || t('template-takes-nothing');
    li.append(el('strong', null, x.name), el('span', 'kind', `${x.language} · ${x.category}`), badge,
      el('small', 'muted', x.body_text), el('small', 'muted', takes));
    if (x.reason) li.append(el('small', 'warn', x.reason));
    return li;
  }

  async function load() {
    const r = await api('GET', `/api/channels/${channel.id}/templates`);
    if (!r.ok) return say(problem(r, 'could-not-load'));
    synced.textContent = r.data.synced_at ? t('templates-synced', { t: stamp(r.data.synced_at) }) : t('templates-never');
    list.replaceChildren(...r.data.items.map(item));
    if (!r.data.items.length) list.append(el('li', 'muted', t('templates-empty')));
    return undefined;
  }

  sync.addEventListener('click', async () => {
    sync.disabled = true;
    say('');
    const r = await api('POST', `/api/channels/${channel.id}/templates/sync`);
    sync.disabled = false;
    if (!r.ok) return say(problem(r, 'could-not-load'));
    say(t('templates-synced-now', { n: r.data.count }));
    return load();
  });

  return {
    box,
    toggle() {
      box.hidden = !box.hidden;
      if (!box.hidden) load();
    },
  };
}
