/**
 * A tiny DOM builder and the formatting shared by the panel and the run view.
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h('div', {class: 'x', onclick: fn}, child, ...)`: attributes, `on*` listeners and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el: HTMLElement, children: (Child | Child[])[]): void {
  for (const child of children) {
    if (Array.isArray(child)) {
      append(el, child);
    } else if (child === null || child === undefined || child === false) {
      continue;
    } else if (typeof child === 'string' || typeof child === 'number') {
      el.appendChild(document.createTextNode(String(child)));
    } else {
      el.appendChild(child);
    }
  }
}

/** What a runs filter accepts: the `where` of `mlo.runs`, as the panel and `mlo ui` explain it. */
export const FILTER_HELP =
  'Filter the runs as mlo.runs(where=...) does, then press Enter:\n' +
  "  metrics.auc > 0.8 and params.model = 'rf'\n" +
  "  status = 'running' or name like 'base%'\n" +
  '  params.C in (0.1, 1.0) and metrics.loss is not null\n' +
  'Keys: metrics.*, params.*, tags.* and name, status, start_time, duration, user; quote odd names with ' +
  'backticks. Empty shows every run.';

/** The run's name, or its short id when it has none. */
export function runLabel(name: string | null | undefined, id: string): string {
  return name ? name : id.slice(0, 10);
}

/** A metric or param value, compact: numbers to 4 significant digits (integers as they are). */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (typeof value === 'number') {
    if (!isFinite(value) || Number.isInteger(value)) {
      return String(value);
    }
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(+value.toPrecision(4));
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}

/** A duration in seconds as "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
/** A count of runs as the API gave it: "10,000+" when it stopped counting there (`exact` false). */
export function formatCount(total: number, exact?: boolean): string {
  return `${total.toLocaleString('en-US')}${exact === false ? '+' : ''}`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '–';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const s = Math.round(seconds);
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  }
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** An ISO time as the browser's local date and time (to the second). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '–';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** A byte count as "512 B", "1.2 kB", "3.4 MB". */
export function formatBytes(size: number | null | undefined): string {
  if (size === null || size === undefined) {
    return '';
  }
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The status badge of a run: running, finished, failed or killed. */
export function statusBadge(status: string): HTMLSpanElement {
  const known = ['running', 'finished', 'failed', 'killed'].includes(status) ? status : 'other';
  return h('span', { class: `mlo-status mlo-status-${known}`, 'data-status': status, title: status }, status);
}

/** A trace's or span's status (ok, error, running, unfinished) as the badge of the run status it means. */
export function traceStatusBadge(status: string): HTMLSpanElement {
  const as: Record<string, string> = { ok: 'finished', error: 'failed', running: 'running', unfinished: 'killed' };
  const badge = statusBadge(as[status] ?? status);
  badge.textContent = status;
  badge.title = status;
  badge.dataset.status = status;
  return badge;
}

/** Token counts as "1,204 in · 300 cached · 96 out" ('' when the span made no LLM call). */
export function formatTokens(usage: {
  input: number | null;
  output: number | null;
  cached?: number | null;
  reasoning?: number | null;
}): string {
  if (usage.input === null && usage.output === null) {
    return '';
  }
  const n = (v: number | null | undefined) => (v ?? 0).toLocaleString('en-US');
  const parts = [`${n(usage.input)} in`];
  if (usage.cached) {
    parts.push(`${n(usage.cached)} cached`);
  }
  parts.push(`${n(usage.output)} out`);
  if (usage.reasoning) {
    parts.push(`${n(usage.reasoning)} reasoning`);
  }
  return parts.join(' · ');
}

/** A cost in US dollars ("$0.000420", "$1.2300"); null means a call's model has no price. */
export function formatUsd(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return 'unpriced';
  }
  return value < 0.01 ? `$${value.toFixed(6)}` : `$${value.toFixed(4)}`;
}
