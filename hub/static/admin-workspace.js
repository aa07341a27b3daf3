/* The Workspace tab: how long messages are kept (empty: forever). The worker's sweep deletes
 * older messages, and the conversations and contacts they leave empty, everywhere. And
 * whether Meta's data-deletion request of the person who connected a channel also erases it.
 * And whether admins must sign in with a second factor. */
import { api, ib } from './common.js';

const MAX_DAYS = 3650;

function say(node, text) {
  node.textContent = text || '';
  node.hidden = !text;
}

export function workspacePanel({ t, problem }) {
  const form = ib('retention-form'), days = ib('retention-days'), erases = ib('platform-deletion');
  const twoFactor = ib('require-two-factor');
  const error = ib('retention-error'), saved = ib('retention-saved'), current = ib('retention-current');

  function show(workspace) {
    days.value = workspace.retention_days === null ? '' : String(workspace.retention_days);
    erases.checked = workspace.platform_deletion_erases === true;
    twoFactor.checked = workspace.require_two_factor_for_admins === true;
    current.textContent = workspace.retention_days === null
      ? t('retention-forever')
      : t('retention-days-now', { days: workspace.retention_days });
  }

  async function load() {
    say(error, '');
    say(saved, '');
    const r = await api('GET', '/api/workspace');
    if (!r.ok) return say(error, problem(r, 'could-not-load'));
    show(r.data);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    say(saved, '');
    const raw = days.value.trim();
    const value = raw === '' ? null : Number(raw);
    if (value !== null && !(Number.isInteger(value) && value >= 1 && value <= MAX_DAYS)) {
      say(error, t('retention-invalid', { max: MAX_DAYS }));
      days.setAttribute('aria-invalid', 'true');
      days.focus();
      return;
    }
    days.removeAttribute('aria-invalid');
    say(error, '');
    const r = await api('PATCH', '/api/workspace', {
      retention_days: value,
      platform_deletion_erases: erases.checked,
      require_two_factor_for_admins: twoFactor.checked,
    });
    if (!r.ok) return say(error, problem(r, 'could-not-save'));
    show(r.data);
    say(saved, t('saved'));
  });

  return { load };
}
