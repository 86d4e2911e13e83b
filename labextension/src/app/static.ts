/**
 * A static export (`mlo ui --export DIR`) answers the API from files: each answer the export wrote is a script
 * `data/<key hash>.js` calling `mloData(key, status, type, body)`. Scripts, not JSON files, because a page opened
 * from `file://` may not fetch its neighbours but may load their scripts.
 */

interface IStored {
  status: number;
  type: string;
  body: string;
}

const answers = new Map<string, IStored>();
const waiting = new Map<string, Promise<IStored | null>>();

declare global {
  interface Window {
    mloData?: (key: string, status: number, type: string, body: string) => void;
  }
}

/** Whether this page is a static export (its `<html>` says `data-mlo-static`). */
export function isStatic(): boolean {
  return document.documentElement.hasAttribute('data-mlo-static');
}

/** FNV-1a (32 bits) of the key as 8 hex digits: the data file's name (the export computes the same). */
export function keyHash(key: string): string {
  let hash = 0x811c9dc5;
  const bytes = new TextEncoder().encode(key);
  for (const byte of bytes) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

function load(key: string): Promise<IStored | null> {
  const known = answers.get(key);
  if (known) {
    return Promise.resolve(known);
  }
  let pending = waiting.get(key);
  if (!pending) {
    window.mloData = (k, status, type, body) => void answers.set(k, { status, type, body });
    pending = new Promise(resolve => {
      const script = document.createElement('script');
      script.src = `data/${keyHash(key)}.js`;
      script.onload = () => resolve(answers.get(key) ?? null);
      script.onerror = () => resolve(null);
      document.head.appendChild(script);
    });
    waiting.set(key, pending);
  }
  return pending;
}

function json(status: number, value: unknown): Response {
  return new Response(JSON.stringify(value), { status, headers: { 'Content-Type': 'application/json' } });
}

/** The key an API request is stored under in an export (what `mlo.ui.export.request_key` computes). */
export function requestKey(path: string, query: URLSearchParams): string {
  if (path === 'compare') {
    const keys = ['experiment', 'view', 'metric', 'param', 'group', 'log_x'];
    return 'compare?' + keys.filter(k => query.get(k)).map(k => `${k}=${query.get(k)}`).join('&');
  }
  if (path === 'diff') {
    return `diff/${query.get('a')}/${query.get('b')}`;
  }
  if (query.get('preview') === 'table') {
    return `${path}?preview=table`;
  }
  return path;
}

/** Answer a request for `<base>mlo/api/...` from the export's data files. */
export async function staticAnswer(url: string, base: string): Promise<Response> {
  const parsed = new URL(url, base);
  const prefix = new URL('mlo/api/', base).pathname;
  const path = decodeURIComponent(parsed.pathname.slice(prefix.length));
  const query = parsed.searchParams;
  if (path === 'compare' && (query.get('where') || query.get('view') === 'brush' || query.get('group'))) {
    const what = query.get('view') === 'brush' ? 'counting the runs inside brushes' : 'filters and grouping';
    return json(400, { error: `${what} need the live \`mlo ui\`: this page is a static export`, status: 400 });
  }
  if (path === 'runs' && query.get('where')) {
    return json(400, { error: 'filters need the live `mlo ui`: this page is a static export', status: 400 });
  }
  const stored = await load(requestKey(path, query));
  if (!stored) {
    return json(404, { error: `not in this export: ${path}`, status: 404 });
  }
  if (path === 'runs' || path === 'traces' || path === 'reports') {
    // the export holds every row; a page of them is cut here
    const all = JSON.parse(stored.body);
    const rows: unknown[] = all[path];
    const offset = Number(query.get('offset') ?? 0);
    const limit = Number(query.get('limit') ?? rows.length);
    const experiments = query.getAll('experiment');
    const run = query.get('run');
    const kept = rows.filter(
      r =>
        (!experiments.length || experiments.includes((r as { experiment: string }).experiment)) &&
        (!run || (r as { run_id: string | null }).run_id === run)
    );
    return json(200, { total: kept.length, offset, limit, [path]: kept.slice(offset, offset + limit) });
  }
  return new Response(stored.body, { status: stored.status, headers: { 'Content-Type': stored.type } });
}
