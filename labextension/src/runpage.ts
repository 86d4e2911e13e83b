/**
 * One run's page: header, params, metrics, charts of the metric histories (live while the run trains), system
 * metrics, tags, artifacts (previews served by the API), the LLM traces it made and the captured cells in the order
 * they ran. Free of JupyterLab: the run tab (`runview.ts`) and the standalone `mlo ui` app both host it.
 */
import { api, artifactText, artifactUrl, IRun, ITableHead, ITracesPage } from './api';
import {
  formatBytes,
  formatDuration,
  formatTime,
  formatTokens,
  formatUsd,
  formatValue,
  h,
  runLabel,
  statusBadge,
  traceStatusBadge
} from './dom';
import { RunCharts } from './runcharts';

/** The run's traces listed in its tab (the newest ones). */
const RUN_TRACES = 50;

export class RunPage {
  constructor(
    readonly node: HTMLElement,
    readonly runId: string,
    private readonly _openTrace: (traceId: string, label: string) => void = () => undefined,
    private readonly _visible: () => boolean = () => true
  ) {
    node.classList.add('mlo-run-view');
    node.dataset.runId = runId;
    node.tabIndex = -1;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** The run as last loaded (null before the first answer). */
  get run(): IRun | null {
    return this._run;
  }

  async load(): Promise<IRun | null> {
    this.node.classList.add('mlo-busy');
    try {
      const [run, traces] = await Promise.all([
        api.run(this.runId),
        api.traces(0, RUN_TRACES, this.runId).catch(() => null) // a store without trace tables: no section
      ]);
      this._run = run;
      this._render(run, traces);
      await this._chart(run);
    } catch (error) {
      this._charts?.dispose();
      this._charts = null;
      this.node.replaceChildren(
        h('div', { class: 'mlo-status-line', 'data-kind': 'error' }, (error as Error).message)
      );
    } finally {
      this.node.classList.remove('mlo-busy');
    }
    return this._run;
  }

  dispose(): void {
    this._disposed = true;
    this._charts?.dispose();
    this._charts = null;
  }

  /** The charts of the run's histories; while the run trains they grow by polling, and the tab reloads at its end. */
  private async _chart(run: IRun): Promise<void> {
    const charts = this._charts;
    if (!charts) {
      return;
    }
    const status = await charts.load();
    if (status === 'running' && !this.isDisposed) {
      this.node.dataset.live = 'true';
      charts.live(
        () => this._visible(),
        () => {
          delete this.node.dataset.live;
          void this.load();
        }
      );
    } else {
      delete this.node.dataset.live;
    }
  }

  /** A new latest value of a metric, shown in its table row. */
  private _latest(key: string, value: number | null): void {
    const cell = this.node.querySelector(`tr[data-key="${CSS.escape(key)}"] td`);
    if (cell && cell.closest('.mlo-metrics, .mlo-system')) {
      cell.textContent = formatValue(value);
      cell.setAttribute('title', value === null ? '' : String(value));
    }
  }

  private _render(run: IRun, traces: ITracesPage | null): void {
    this._charts?.dispose();
    const chartGrid = h('div', { class: 'mlo-charts' });
    const systemGrid = h('div', { class: 'mlo-charts mlo-system-charts' });
    const hasSystem = Object.keys(run.metrics ?? {}).some(isSystem);
    const started = Date.parse(run.start_time) / 1000;
    this._charts = new RunCharts(
      run.id,
      runLabel(run.name, run.id),
      isNaN(started) ? 0 : started,
      { charts: chartGrid, system: hasSystem ? systemGrid : null },
      (key, value) => this._latest(key, value)
    );
    const git = run.git;
    const gitText = git
      ? [git.commit ? String(git.commit).slice(0, 10) : null, git.branch ? `(${git.branch})` : null]
          .filter(Boolean)
          .join(' ') + (git.dirty ? ', uncommitted changes' : '')
      : '–';
    const header: [string, Node | string][] = [
      ['experiment', run.experiment],
      ['status', statusBadge(run.status)],
      ['id', h('code', {}, run.id)],
      ['start', formatTime(run.start_time)],
      ['duration', run.end_time || run.status !== 'running' ? formatDuration(run.duration) : 'running'],
      ['user', run.user ?? '–'],
      ['source', run.source ?? '–'],
      ['git', gitText]
    ];
    if (run.parent_id) {
      header.push(['parent', h('code', {}, run.parent_id)]);
    }
    this.node.replaceChildren(
      h('h1', { class: 'mlo-run-title' }, runLabel(run.name, run.id)),
      h(
        'table',
        { class: 'mlo-table mlo-run-header' },
        h(
          'tbody',
          {},
          header.map(([key, value]) =>
            h('tr', { 'data-field': key }, h('th', {}, key), h('td', {}, value))
          )
        )
      ),
      ...(run.note ? [section('Note', 'note', h('div', { class: 'mlo-run-note' }, run.note))] : []),
      section('Params', 'params', keyValueTable('mlo-params', run.params)),
      section('Metrics', 'metrics', keyValueTable('mlo-metrics', metricsWhere(run, key => !isSystem(key)))),
      section('Charts', 'charts', h('div', {}, this._charts.controls, chartGrid)),
      ...(hasSystem
        ? [
            section(
              'System',
              'system',
              h('div', {}, keyValueTable('mlo-system', metricsWhere(run, isSystem)), systemGrid)
            )
          ]
        : []),
      section('Tags', 'tags', keyValueTable('mlo-tags', run.tags)),
      section('Artifacts', 'artifacts', this._artifacts(run)),
      ...(traces && traces.total ? [section(`Traces (${traces.total})`, 'traces', this._traces(traces))] : []),
      section(`Cells (${run.cells.length})`, 'cells', this._cells(run))
    );
  }

  private _artifacts(run: IRun): HTMLElement {
    if (!run.artifacts.length) {
      return h('p', { class: 'mlo-empty' }, 'No artifacts.');
    }
    return h(
      'ul',
      { class: 'mlo-artifacts' },
      run.artifacts.map(a => {
        const kind = previewKind(a.path, a.media_type);
        const link = h(
          'a',
          {
            class: 'mlo-artifact-link',
            href: artifactUrl(run.id, a.path),
            target: '_blank',
            rel: 'noopener',
            title: `${a.media_type ?? ''} ${a.digest.replace(/^[a-z0-9]+:/, '').slice(0, 12)}`.trim()
          },
          a.path
        );
        const size = h('span', { class: 'mlo-artifact-size' }, formatBytes(a.size));
        if (!kind || (kind !== 'image' && kind !== 'html' && a.size > PREVIEW_BYTES)) {
          return h('li', { 'data-path': a.path, 'data-preview': 'none' }, link, size);
        }
        const body = h('div', { class: 'mlo-artifact-preview', 'data-kind': kind });
        const details = h(
          'details',
          { class: 'mlo-artifact', 'data-path': a.path, 'data-preview': kind },
          h('summary', {}, link, size),
          body
        );
        // loaded when first opened, so a run with many artifacts costs nothing until asked
        details.addEventListener('toggle', () => {
          if (details.open && !body.dataset.loaded) {
            body.dataset.loaded = 'true';
            void this._preview(run.id, a.path, kind, body);
          }
        });
        return h('li', { 'data-path': a.path }, details);
      })
    );
  }

  private async _preview(runId: string, path: string, kind: PreviewKind, body: HTMLElement): Promise<void> {
    const url = artifactUrl(runId, path);
    try {
      if (kind === 'image') {
        body.replaceChildren(h('img', { src: url, alt: path, loading: 'lazy' }));
      } else if (kind === 'html') {
        // no allow-* at all: the page runs no script and has no origin (the API's CSP says the same)
        body.replaceChildren(h('iframe', { src: url, sandbox: '', title: path, referrerpolicy: 'no-referrer' }));
      } else if (kind === 'table') {
        body.replaceChildren(tableHead(await api.tableHead(runId, path)));
      } else {
        let text = await artifactText(runId, path);
        if (kind === 'json') {
          try {
            text = JSON.stringify(JSON.parse(text), null, 2);
          } catch {
            // shown as it is
          }
        }
        body.replaceChildren(h('pre', { class: 'mlo-artifact-text' }, text));
      }
    } catch (error) {
      body.replaceChildren(h('div', { class: 'mlo-status-line', 'data-kind': 'error' }, (error as Error).message));
    }
  }

  private _traces(page: ITracesPage): HTMLElement {
    const rows = page.traces.map(t =>
      h(
        'tr',
        { class: 'mlo-run-trace', 'data-trace-id': t.trace_id, 'data-status': t.status },
        h(
          'td',
          {},
          h(
            'button',
            {
              class: 'mlo-link mlo-trace-name',
              'data-trace-id': t.trace_id,
              title: `open trace ${t.trace_id}`,
              onclick: () => this._openTrace(t.trace_id, t.name)
            },
            t.name
          )
        ),
        h('td', {}, traceStatusBadge(t.status)),
        h('td', {}, t.cell !== null ? `In [${t.cell}]` : ''),
        h('td', {}, t.status === 'running' ? 'running' : formatDuration(t.duration)),
        h(
          'td',
          { class: 'mlo-trace-tokens' },
          formatTokens({ input: t.input_tokens, output: t.output_tokens, cached: t.cached_tokens }) || '–'
        ),
        h('td', { class: 'mlo-trace-cost' }, t.llm_calls ? formatUsd(t.cost_usd) : '–')
      )
    );
    const more =
      page.total > page.traces.length
        ? h(
            'p',
            { class: 'mlo-empty' },
            `${page.total - page.traces.length} older traces not shown: ` +
              `mlo.traces(run="${this.runId.slice(0, 10)}") lists them all.`
          )
        : null;
    return h(
      'div',
      {},
      h(
        'table',
        { class: 'mlo-table mlo-run-traces' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['trace', 'status', 'cell', 'duration', 'tokens', 'cost'].map(c => h('th', {}, c))
          )
        ),
        h('tbody', {}, rows)
      ),
      more
    );
  }

  private _cells(run: IRun): HTMLElement {
    if (!run.cells.length) {
      return h('p', { class: 'mlo-empty' }, 'No captured cells.');
    }
    return h(
      'ol',
      { class: 'mlo-cells' },
      [...run.cells]
        .sort((a, b) => a.seq - b.seq)
        .map(cell =>
          h(
            'li',
            {
              class: `mlo-cell${cell.success ? '' : ' mlo-cell-failed'}`,
              'data-seq': cell.seq
            },
            h(
              'div',
              { class: 'mlo-cell-prompt' },
              `[${cell.execution_count ?? ' '}]`,
              cell.duration ? h('span', { class: 'mlo-cell-duration' }, formatDuration(cell.duration)) : null
            ),
            h('pre', { class: 'mlo-cell-source' }, cell.source),
            cell.error ? h('pre', { class: 'mlo-cell-error' }, cell.error) : null
          )
        )
    );
  }

  private _run: IRun | null = null;
  private _charts: RunCharts | null = null;
  private _disposed = false;
}

/** Text artifacts up to this size get a preview (the whole file is fetched); larger ones are links. */
const PREVIEW_BYTES = 1 << 20;

type PreviewKind = 'image' | 'html' | 'table' | 'json' | 'text';

/** How an artifact is previewed, from its media type and name (null: only its link). */
export function previewKind(path: string, media: string | null): PreviewKind | null {
  const name = path.toLowerCase();
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.')) : '';
  if (['.csv', '.tsv', '.parquet'].includes(ext)) {
    return 'table';
  }
  if ((media ?? '').startsWith('image/') || ['.png', '.jpg', '.jpeg', '.gif', '.webp', '.svg'].includes(ext)) {
    return 'image';
  }
  if (media === 'text/html' || ext === '.html' || ext === '.htm') {
    return 'html';
  }
  if (media === 'application/json' || ext === '.json') {
    return 'json';
  }
  const texts = ['.txt', '.log', '.md', '.py', '.yaml', '.yml', '.toml', '.cfg', '.ini', '.sql', '.ipynb', '.xml'];
  if ((media ?? '').startsWith('text/') || texts.includes(ext)) {
    return 'text';
  }
  return null;
}

function tableHead(head: ITableHead): HTMLElement {
  const shown = head.rows.length;
  const note =
    head.rows_total !== null
      ? `first ${shown} of ${head.rows_total.toLocaleString('en-US')} rows`
      : `first ${shown} rows`;
  return h(
    'div',
    { class: 'mlo-artifact-table' },
    h(
      'table',
      { class: 'mlo-table' },
      h('thead', {}, h('tr', {}, head.columns.map(c => h('th', { title: c }, c)))),
      h(
        'tbody',
        {},
        head.rows.map(row => h('tr', {}, row.map(v => h('td', {}, v === null ? '' : formatValue(v)))))
      )
    ),
    h('p', { class: 'mlo-empty' }, note)
  );
}

/** CPU, memory, I/O and GPU samples (`system.*`), shown apart from what the run itself logged. */
function isSystem(key: string): boolean {
  return key.startsWith('system.');
}

function metricsWhere(run: IRun, keep: (key: string) => boolean): Record<string, unknown> {
  return Object.fromEntries(Object.entries(run.metrics ?? {}).filter(([key]) => keep(key)));
}

function section(title: string, key: string, content: HTMLElement): HTMLElement {
  return h('section', { class: 'mlo-run-section', 'data-section': key }, h('h2', {}, title), content);
}

function keyValueTable(className: string, values: Record<string, unknown>): HTMLElement {
  const entries = Object.entries(values ?? {});
  if (!entries.length) {
    return h('p', { class: `mlo-empty ${className}` }, 'None.');
  }
  return h(
    'table',
    { class: `mlo-table ${className}` },
    h(
      'tbody',
      {},
      entries.map(([key, value]) =>
        h(
          'tr',
          { 'data-key': key },
          h('th', {}, key),
          h('td', { title: typeof value === 'number' ? String(value) : '' }, formatValue(value))
        )
      )
    )
  );
}

