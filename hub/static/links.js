/* Web addresses in a message's text, made clickable safely: only http: and https: become links
 * (a `javascript:` or `data:` address, or anything else, stays plain text), each opens in a new
 * tab with rel="noopener noreferrer", and all text reaches the page as text nodes. */
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}'"]+$/; // "see https://x.y/a." ends the link before the dot

export function linkedText(text) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of String(text).matchAll(URL_IN_TEXT)) {
    const raw = match[0].replace(TRAILING, '');
    let href = null;
    try { const u = new URL(raw); href = u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null; } catch (e) { href = null; }
    if (!href) continue;
    out.append(document.createTextNode(text.slice(at, match.index)));
    const a = document.createElement('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.textContent = raw;
    out.append(a);
    at = match.index + raw.length;
  }
  out.append(document.createTextNode(text.slice(at)));
  return out;
}
