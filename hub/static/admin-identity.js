/* A web-chat channel's identity verification (admin console, Channels → settings): the
 * per-channel secret, generated or rotated with confirmation and shown once, and an example of
 * signing a user id with it. */
import { api, ib } from './common.js';

export function identitySection({ t, problem, confirmDialog, copyButton, editing }) {
  function say(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  const idStatus = ib('identity-status'), idError = ib('identity-error'), idResult = ib('identity-result');
  const idSecret = ib('identity-secret'), idGenerate = ib('identity-generate'), idCopied = ib('identity-copied');
  let identityOn = null; // true, false, or null when the hub did not say

  ib('identity-example').textContent = [
    `# ${t('example-server')}`,
    'import hashlib, hmac, os',
    'secret = os.environ["SOSYOCHAT_IDENTITY_SECRET"].encode()',
    'user_hash = hmac.new(secret, str(user_id).encode(), hashlib.sha256).hexdigest()',
    '',
    `// ${t('example-page')}`,
    "addEventListener('sosyochat:ready', () => SosyoChat.identify({ user_id: '42', user_hash: '…' }));",
  ].join('\n');

  function showIdentity() {
    idStatus.hidden = identityOn === null;
    idStatus.textContent = identityOn === null ? '' : t(identityOn ? 'identity-on' : 'identity-off');
    idStatus.dataset.state = identityOn === null ? 'unknown' : (identityOn ? 'on' : 'off');
    idGenerate.textContent = t(identityOn ? 'identity-rotate' : 'identity-generate');
  }

  /* Whether the channel has an identity secret: a web chat's only secret is that one, so the
   * channel's has_secrets says it (or `identity`, should the hub ever send it by that name). */
  function identityOf(c) {
    if (typeof c.identity === 'boolean') return c.identity;
    if (c.kind === 'webchat' && typeof c.has_secrets === 'boolean') return c.has_secrets;
    return null;
  }

  function identityReset(c) {
    idSecret.textContent = '';
    idResult.hidden = true;
    idCopied.textContent = '';
    say(idError, '');
    identityOn = c ? identityOf(c) : null;
    showIdentity();
  }

  idGenerate.addEventListener('click', async () => {
    if (!editing()) return;
    const c = editing();
    if (identityOn !== false) {
      const ok = await confirmDialog(t('identity-rotate-title'), t('identity-rotate-text'), t('identity-rotate'));
      if (!ok || !editing() || editing().id !== c.id) return;
    }
    say(idError, '');
    idGenerate.disabled = true;
    try {
      const r = await api('POST', `/api/channels/${c.id}/identity-secret`);
      if (!r.ok || !r.data || typeof r.data.identity_secret !== 'string') {
        return say(idError, problem(r, 'could-not-save'));
      }
      if (!editing() || editing().id !== c.id) return;
      idSecret.textContent = r.data.identity_secret;
      idCopied.textContent = '';
      idResult.hidden = false;
      identityOn = true;
      showIdentity();
      idResult.focus();
    } finally {
      idGenerate.disabled = false;
    }
  });
  copyButton(ib('copy-identity-secret'), idSecret, idCopied);
  copyButton(ib('copy-identity-example'), ib('identity-example'), idCopied);

  return { reset: identityReset };
}
