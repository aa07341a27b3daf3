/* A small emoji picker for a text field: a button opens a grid of common emoji; arrow keys move,
 * Enter (or a click) inserts the emoji at the caret, Escape closes and gives the focus back.
 * No dependency: the list is built in, each emoji named in English and Turkish. */
export const EMOJI = [
  ['😀', 'grinning face', 'sırıtan yüz'], ['😂', 'tears of joy', 'sevinç gözyaşları'],
  ['😊', 'smiling face', 'gülümseyen yüz'], ['😍', 'heart eyes', 'kalp gözler'],
  ['😉', 'winking face', 'göz kırpan yüz'], ['😎', 'sunglasses', 'güneş gözlüklü yüz'],
  ['🤔', 'thinking face', 'düşünen yüz'], ['😅', 'sweat smile', 'terleyen gülüş'],
  ['😢', 'crying face', 'ağlayan yüz'], ['😮', 'surprised face', 'şaşkın yüz'],
  ['😴', 'sleeping face', 'uyuyan yüz'], ['🙃', 'upside-down face', 'ters yüz'],
  ['🙂', 'slight smile', 'hafif gülümseme'], ['😇', 'halo', 'melek yüz'],
  ['🥳', 'party face', 'parti yüzü'], ['😡', 'angry face', 'kızgın yüz'],
  ['👍', 'thumbs up', 'beğendim'], ['👎', 'thumbs down', 'beğenmedim'],
  ['👏', 'clapping', 'alkış'], ['🙏', 'thank you', 'teşekkürler'],
  ['👋', 'waving hand', 'el sallama'], ['🤝', 'handshake', 'tokalaşma'],
  ['💪', 'strong', 'güçlü'], ['👌', 'OK hand', 'tamam işareti'],
  ['❤️', 'red heart', 'kırmızı kalp'], ['💙', 'blue heart', 'mavi kalp'],
  ['🔥', 'fire', 'ateş'], ['✨', 'sparkles', 'parıltı'],
  ['🎉', 'party popper', 'konfeti'], ['⭐', 'star', 'yıldız'],
  ['✅', 'check mark', 'onay işareti'], ['❌', 'cross mark', 'çarpı işareti'],
  ['⚠️', 'warning', 'uyarı'], ['❓', 'question mark', 'soru işareti'],
  ['💡', 'light bulb', 'ampul'], ['📦', 'package', 'paket'],
  ['🚚', 'delivery truck', 'kargo kamyonu'], ['💳', 'credit card', 'kredi kartı'],
  ['📞', 'telephone', 'telefon'], ['📧', 'e-mail', 'e-posta'],
  ['⏰', 'alarm clock', 'çalar saat'], ['📅', 'calendar', 'takvim'],
  ['🎁', 'gift', 'hediye'], ['☕', 'coffee', 'kahve'],
  ['🌟', 'glowing star', 'parlayan yıldız'], ['💯', 'hundred points', 'yüz puan'],
  ['👀', 'eyes', 'gözler'], ['🙌', 'raised hands', 'kaldırılmış eller'],
];
const COLUMNS = 8;

/* Inserts `text` into a textarea or input at its caret (replacing a selection), then puts the
 * caret after it and tells the field's listeners. */
export function insertAtCaret(field, text) {
  const start = field.selectionStart ?? field.value.length, end = field.selectionEnd ?? start;
  field.value = field.value.slice(0, start) + text + field.value.slice(end);
  field.selectionStart = field.selectionEnd = start + text.length;
  field.dispatchEvent(new Event('input', { bubbles: true }));
}

/* Wires `button` to open a grid (made here, placed after the button) that inserts into `field`.
 * `label(key)` gives the texts: "emoji" (the grid's name); `language()` 'en' or 'tr'. */
export function emojiPicker(button, field, { label, language }) {
  const grid = document.createElement('div');
  grid.className = 'emoji-grid';
  grid.setAttribute('role', 'grid');
  grid.setAttribute('aria-label', label('emoji'));
  grid.dataset.ib = 'emoji-grid';
  grid.hidden = true;
  const cells = [];
  for (let r = 0; r < EMOJI.length; r += COLUMNS) {
    const row = document.createElement('div');
    row.setAttribute('role', 'row');
    EMOJI.slice(r, r + COLUMNS).forEach(([emoji, en, tr]) => {
      const cell = document.createElement('button');
      cell.type = 'button';
      cell.className = 'emoji';
      cell.setAttribute('role', 'gridcell');
      cell.setAttribute('aria-label', language() === 'tr' ? tr : en);
      cell.title = language() === 'tr' ? tr : en;
      cell.textContent = emoji;
      cell.tabIndex = -1;
      cell.addEventListener('click', () => choose(emoji));
      row.append(cell);
      cells.push(cell);
    });
    grid.append(row);
  }
  button.setAttribute('aria-haspopup', 'grid');
  button.setAttribute('aria-expanded', 'false');
  button.after(grid);
  let at = 0, caret = null;

  function focusCell(i) {
    cells[at].tabIndex = -1;
    at = Math.max(0, Math.min(cells.length - 1, i));
    cells[at].tabIndex = 0;
    cells[at].focus();
  }
  function open() {
    caret = [field.selectionStart, field.selectionEnd];
    grid.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    focusCell(at);
  }
  function close(back = true) {
    grid.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    if (back) button.focus();
  }
  function choose(emoji) {
    close(false);
    field.focus();
    if (caret) [field.selectionStart, field.selectionEnd] = caret;
    insertAtCaret(field, emoji);
  }
  button.addEventListener('click', () => (grid.hidden ? open() : close()));
  grid.addEventListener('keydown', (e) => {
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: COLUMNS, ArrowUp: -COLUMNS, Home: -at, End: cells.length };
    if (e.key in moves) { e.preventDefault(); focusCell(at + moves[e.key]); } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation(); // closes the picker only, not what the page's Escape closes
      close();
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      choose(cells[at].textContent);
    }
  });
  grid.addEventListener('focusout', (e) => { if (!grid.contains(e.relatedTarget) && e.relatedTarget !== button) close(false); });
  return { open, close, grid };
}
