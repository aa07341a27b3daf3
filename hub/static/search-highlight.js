/* Marking where a search matched, in the text as it was written. The server matches the
 * folded query in the folded text (hub/search/folding.py: case, Turkish dotted and dotless i
 * and diacritics do not count), so "istanbul" finds "İSTANBUL". This folds the text the same
 * way one letter at a time, remembering which original letters each folded one came from, and
 * wraps the original letters of each match in a <mark>, built with DOM nodes (never HTML). */

const DOTTED_I = { '\u0130': 'i', I: 'i', '\u0131': 'i' }; // İ, I, dotless i: all four are one
const CASEFOLD = { '\u00df': 'ss', '\u1e9e': 'ss', '\u03c2': '\u03c3' }; // what casefold() does beyond lower case
const MARK = /\p{Mn}/u;
const SPACE = /\s/u;

const dotless = (s) => s.replace(/[\u0130I\u0131]/g, (c) => DOTTED_I[c]);
const step = (s) => {
  const lowered = dotless(s).toLowerCase().replace(/[\u00df\u1e9e\u03c2]/g, (c) => CASEFOLD[c]);
  return dotless([...lowered.normalize('NFKD')].filter((c) => !MARK.test(c)).join(''));
};

/** The folded text, and for each of its UTF-16 units the [start, end) of the original letter. */
export function foldWithMap(text) {
  let out = '';
  const from = [];
  let i = 0;
  for (const c of String(text)) {
    const end = i + c.length;
    if (SPACE.test(c)) {
      if (!out.endsWith(' ')) { out += ' '; from.push([i, end]); }
    } else {
      const f = step(step(c));
      for (let k = 0; k < f.length; k += 1) from.push([i, end]);
      out += f;
    }
    i = end;
  }
  return { out, from };
}

export const fold = (text) => foldWithMap(text).out.trim();

/** The [start, end) ranges of the original text where the query matches (folded). */
export function matches(text, query) {
  const needle = fold(query);
  if (!needle || !text) return [];
  const { out, from } = foldWithMap(text);
  const found = [];
  for (let at = out.indexOf(needle); at >= 0; at = out.indexOf(needle, at + needle.length)) {
    const start = from[at][0], end = from[at + needle.length - 1][1];
    const last = found[found.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end); else found.push([start, end]);
  }
  return found;
}

/** Text and <mark> nodes showing `text` with the matches marked; a long text starts a little
 * before its first match (`around` characters), so that the match is in view. */
export function highlighted(text, query, around = 30) {
  let source = String(text || '');
  let found = matches(source, query);
  const prefix = [];
  if (found.length && found[0][0] > around * 2) {
    let cut = found[0][0] - around;
    if (/[\udc00-\udfff]/.test(source[cut] || '')) cut -= 1; // not inside a surrogate pair
    source = source.slice(cut);
    found = found.map(([a, b]) => [a - cut, b - cut]);
    prefix.push(document.createTextNode('…'));
  }
  const nodes = [...prefix];
  let at = 0;
  for (const [start, end] of found) {
    if (start > at) nodes.push(document.createTextNode(source.slice(at, start)));
    const mark = document.createElement('mark');
    mark.textContent = source.slice(start, end);
    nodes.push(mark);
    at = end;
  }
  if (at < source.length) nodes.push(document.createTextNode(source.slice(at)));
  return nodes;
}
