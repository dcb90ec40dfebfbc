// Small helpers shared by the Experiments and Models pages: element building (text only, never HTML, since
// names, params and tags come from users), number/time formatting and a modal confirmation dialog.

/** An element with attributes ('class', 'text' and data-/aria- attributes included) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** The element with data-testid `id` inside `root`. */
export function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
}

const pad2 = (n) => String(n).padStart(2, '0');

/** "2026-12-01 17:03" in local time, or "—". */
export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** "1 h 02 min", "3 min 05 s", "12.3 s", or "—". */
export function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h} h ${pad2(m)} min` : `${m} min ${pad2(sec)} s`;
}

/** A metric value with about 4 significant digits; integers as they are. */
export function fmtValue(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return Number(v.toPrecision(4)).toString();
}

/** "12.3 MiB" from bytes. */
export function fmtBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

/** Distinct colours for runs in an overlay, by index. */
export const kRunColors = ['#2563eb', '#dc2626', '#16a34a', '#ea580c', '#7c3aed', '#0891b2', '#ca8a04', '#db2777',
  '#4b5563', '#65a30d'];

/** A <dl class="kv"> row list: [label, value (text or node), testid?]. */
export function kvList(rows, testid) {
  return el('dl', { class: 'kv', 'data-testid': testid }, rows.filter(Boolean).map(([label, value, id]) => el('div', {},
    el('dt', { text: label }),
    el('dd', { 'data-testid': id }, value === undefined || value === null || value === '' ? '—' : value))));
}

/**
 * Asks for confirmation in a modal <dialog>; resolves true when confirmed, false when cancelled (the
 * Cancel button, Escape). `message` is text or nodes; `danger` styles the confirm button as destructive.
 */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false, testid = 'confirm-dialog' }) {
  return new Promise((resolve) => {
    const cancel = el('button', { type: 'button', 'data-testid': `${testid}-cancel`, text: 'Cancel' });
    const confirm = el('button', { type: 'submit', class: danger ? 'danger' : 'primary', 'data-testid': `${testid}-confirm`,
      text: confirmLabel });
    const titleId = `${testid}-title`;
    const form = el('form', { method: 'dialog' },
      el('h2', { id: titleId, text: title }),
      el('div', { class: 'dialog-message', 'data-testid': `${testid}-message` }, message),
      el('div', { class: 'dialog-actions' }, cancel, confirm));
    const dialog = el('dialog', { class: 'dialog', 'data-testid': testid, 'aria-labelledby': titleId }, form);
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    form.addEventListener('submit', () => {
      answer = true;
    });
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    confirm.focus();
  });
}
