/* The inbox's service worker, served at /sw.js (scope: the whole hub). It only shows Web Push
 * notices (hub.notify.push: a kind, a conversation id and a short preview, decrypted by the
 * browser) and, on a click, brings an open inbox forward and has it open the conversation,
 * or opens the inbox on it. It caches nothing and fetches nothing. */
const TEXT = {
  en: { assigned: 'A conversation was assigned to you', team: 'A conversation waits in your team’s queue', mention: 'You were mentioned in a note', other: 'SosyoCRM inbox' },
  tr: { assigned: 'Size bir konuşma atandı', team: 'Ekibinizin kuyruğunda bir konuşma bekliyor', mention: 'Bir notta anıldınız', other: 'SosyoCRM gelen kutusu' },
};
const words = () => TEXT[(self.navigator.language || 'en').slice(0, 2).toLowerCase()] || TEXT.en;
const ID = /^[0-9a-f-]{36}$/;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (err) { data = {}; }
  const id = ID.test(data.conversation_id || '') ? data.conversation_id : '';
  const w = words();
  event.waitUntil(self.registration.showNotification(w[data.kind] || w.other, {
    body: String(data.preview || '').slice(0, 120),
    tag: id || 'hub',
    data: { conversation_id: id, kind: data.kind || '' },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = (event.notification.data || {}).conversation_id || '';
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const inbox = open.find((c) => new URL(c.url).origin === self.location.origin && new URL(c.url).pathname === '/');
    if (inbox) {
      await inbox.focus();
      if (id) inbox.postMessage({ type: 'open', conversation_id: id });
      return;
    }
    await self.clients.openWindow(id ? `/?conversation=${id}` : '/');
  })());
});
