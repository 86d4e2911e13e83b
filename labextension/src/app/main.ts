/**
 * The standalone `mlo ui` app: a single page on the REST API (or, in a static export, on its data files), with
 * the run, diff and trace pages the JupyterLab tabs show. Pages are hash routes, so they work from `file://`:
 *
 *   #/runs?experiment=&where=          experiments and runs: filter, one scrolling table, ticking, compare
 *   #/run/<id>                          a run: charts (live while it trains), artifacts, params, tags, cells
 *   #/compare?runs=a,b,...&experiment=&where=   ticked runs: overlaid (or grouped) histories, single values as dot
 *                                       plots, a param/metric table, the two-run diff; and over the filtered runs
 *                                       the notebook widget's scatter, parallel coordinates (brushing) and importance
 *   #/models, #/model/<name>/<version>  versions and aliases; a version's model card
 *   #/reports, #/report/<id>            validation, drift and monitoring reports (sandboxed pages)
 *   #/traces, #/trace/<id>              LLM traces
 */
import {
  api,
  ApiError,
  apiPath,
  IExperiment,
  IMetricHistories,
  IModelVersion,
  IRun,
  IRunRow,
  requestAPI,
  requestText
} from '../api';
import { chartControls, colorFor, DEFAULT_OPTIONS, IChartOptions, ILine, LineChart, onThemeChange } from '../charts';
import { DiffPage } from '../diffpage';
import { FILTER_HELP, formatDuration, formatTime, formatUsd, formatValue, h, runLabel, statusBadge } from '../dom';
import { RunPage } from '../runpage';
import { RunTable, TOTAL_EVENT } from './runtable';
import { TracePage } from '../tracepage';
import { dotPlot } from '../compare/dots';
import { IBrushSpec } from '../compare/parallel';
import { drawPayload, IDrawn } from '../compare/views';
import { isStatic } from './static';

const PAGE_SIZE = 100;
/** Points per history on the compare page (the series' shape, from min/max buckets; a run's page has them all). */
const COMPARE_POINTS = 1000;

interface IPage {
  dispose?: () => void;
}

let current: IPage = {};
const selected = new Set<string>();

function main(): HTMLElement {
  return document.getElementById('mlo-main')!;
}

function errorLine(error: unknown): HTMLElement {
  const message = (error as Error).message ?? String(error);
  const hint = error instanceof ApiError && error.status === 401 ? ' (open the URL `mlo ui` printed)' : '';
  return h('div', { class: 'mlo-status-line', 'data-kind': 'error', role: 'alert' }, message + hint);
}

function empty(text: string, ...more: (Node | string)[]): HTMLElement {
  return h('div', { class: 'mlo-app-empty' }, h('p', {}, text), ...more);
}

function link(hash: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h('a', { href: hash, ...attrs }, text);
}

// -- theme: the system's light, dark or high-contrast choice, told to the charts as JupyterLab tells them --------
function applyTheme(): void {
  const dark = window.matchMedia('(prefers-color-scheme: dark)').matches;
  const contrast =
    window.matchMedia('(prefers-contrast: more)').matches || window.matchMedia('(forced-colors: active)').matches;
  document.body.dataset.jpThemeLight = String(!dark);
  document.body.dataset.jpThemeName = `mlo ${contrast ? 'high contrast ' : ''}${dark ? 'dark' : 'light'}`;
}

// -- runs -----------------------------------------------------------------------------------------------------
async function runsPage(host: HTMLElement, params: URLSearchParams): Promise<void> {
  const experiments = await api.experiments();
  if (!experiments.length) {
    host.replaceChildren(
      empty(
        'No runs in this workspace yet.',
        h('pre', {}, "import mlo\nwith mlo.start_run('first', experiment='demo'):\n    mlo.log_metric('loss', 0.3)")
      )
    );
    return;
  }
  const experiment = params.get('experiment') ?? '';
  const where = params.get('where') ?? '';
  const go = (changes: Record<string, string | number>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v === '' || v === 0) {
        next.delete(k);
      } else {
        next.set(k, String(v));
      }
    }
    location.hash = `#/runs?${next}`;
  };
  const picker = h(
    'select',
    { class: 'mlo-app-experiment', 'aria-label': 'experiment', onchange: (e: Event) => go({ experiment: (e.target as HTMLSelectElement).value, offset: 0 }) },
    h('option', { value: '' }, `all experiments (${experiments.reduce((n, e) => n + e.runs, 0)} runs)`),
    experiments.map((e: IExperiment) =>
      h('option', { value: e.name, selected: e.name === experiment }, `${e.name} (${e.runs})`)
    )
  );
  const filter = h('input', {
    class: 'mlo-filter mlo-app-filter',
    type: 'search',
    value: where,
    placeholder: isStatic() ? 'filters need the live mlo ui' : "where, e.g. metrics.acc > 0.8 and params.model = 'rf'",
    title: FILTER_HELP,
    spellcheck: 'false',
    disabled: isStatic(),
    'aria-label': 'filter runs',
    onkeydown: (e: KeyboardEvent) => {
      if (e.key === 'Enter') {
        go({ where: (e.target as HTMLInputElement).value.trim(), offset: 0 });
      }
    }
  } as any);
  const help = h('details', { class: 'mlo-app-help' }, h('summary', {}, 'filter help'), h('pre', {}, FILTER_HELP));
  const status = h('div', { class: 'mlo-app-status' });
  const table = h('div', { class: 'mlo-app-table' });
  const compare = h('button', { class: 'mlo-button mlo-app-compare', onclick: () => openCompare(experiment, where) }, 'Compare');
  const clear = h('button', { class: 'mlo-button mlo-app-clear', onclick: () => { selected.clear(); refreshSelection(); } }, 'Clear');
  const selectAll = h(
    'button',
    {
      class: 'mlo-button mlo-app-select-all',
      title: 'tick every run that matches the filter (up to 1,000)',
      onclick: async () => {
        try {
          const page = await requestAPI<{ runs: IRunRow[] }>('runs', {
            experiment: experiment || undefined,
            where: where || undefined,
            columns: 'run_id',
            limit: 1000
          });
          page.runs.forEach(r => selected.add(r.run_id));
          refreshSelection();
        } catch (error) {
          status.replaceChildren(errorLine(error));
        }
      }
    },
    'Select all matching'
  );
  const count = h('span', { class: 'mlo-app-count' });
  const refreshSelection = () => {
    count.textContent = `${selected.size} ticked`;
    (compare as HTMLButtonElement).disabled = selected.size < 2;
    table.querySelectorAll<HTMLInputElement>('input.mlo-app-tick').forEach(box => {
      box.checked = selected.has(box.dataset.runId!);
    });
  };
  host.replaceChildren(
    h('h1', {}, 'Runs'),
    h('div', { class: 'mlo-app-toolbar' }, picker, filter, selectAll, clear, count, compare),
    help,
    status,
    table
  );
  const runs = new RunTable({ experiment: experiment || undefined, where: where || undefined }, selected, () =>
    refreshSelection()
  );
  table.replaceChildren(runs.node);
  refreshSelection();
  let total;
  try {
    total = await runs.load();
  } catch (error) {
    table.replaceChildren();
    status.replaceChildren(errorLine(error));
    return;
  }
  count.dataset.total = String(total);
  if (!total) {
    table.replaceChildren(empty(where ? 'No run matches this filter.' : 'No runs in this experiment.'));
    return;
  }
  const matching = h('span', { class: 'mlo-app-matching' }, `${runs.count} runs`);
  runs.node.addEventListener(TOTAL_EVENT, () => {
    matching.textContent = `${runs.count} runs`;
  });
  status.replaceChildren(matching);
}

function pager(total: number, offset: number, to: (offset: number) => void): HTMLElement {
  const last = Math.min(total, offset + PAGE_SIZE);
  return h(
    'div',
    { class: 'mlo-app-pager' },
    h('button', { class: 'mlo-button', disabled: offset === 0, onclick: () => to(Math.max(0, offset - PAGE_SIZE)) }, '‹ newer'),
    h('span', { class: 'mlo-app-range' }, `${offset + 1}–${last} of ${total.toLocaleString('en-US')}`),
    h('button', { class: 'mlo-button', disabled: last >= total, onclick: () => to(offset + PAGE_SIZE) }, 'older ›')
  );
}

function openCompare(experiment: string, where: string): void {
  const query = new URLSearchParams({ runs: [...selected].join(',') });
  if (experiment) {
    query.set('experiment', experiment);
  }
  if (where) {
    query.set('where', where);
  }
  location.hash = `#/compare?${query}`;
}

// -- compare --------------------------------------------------------------------------------------------------
async function comparePage(host: HTMLElement, params: URLSearchParams): Promise<IPage> {
  const ids = (params.get('runs') ?? '').split(',').filter(Boolean).slice(0, 50);
  if (ids.length < 2) {
    host.replaceChildren(empty('Tick two or more runs on the Runs page, then press Compare.'));
    return {};
  }
  const [runs, histories] = await Promise.all([
    Promise.all(ids.map(id => api.run(id))),
    // thinned to each bucket's lowest and highest point: a chart a few hundred pixels wide shows no more
    Promise.all(ids.map(id => requestAPI<IMetricHistories>(`runs/${encodeURIComponent(id)}/metrics`, { max_points: COMPARE_POINTS })))
  ]);
  let options: IChartOptions = { ...DEFAULT_OPTIONS };
  const charts: LineChart[] = [];
  const controls = chartControls(options, next => {
    options = next;
    charts.forEach(c => c.setOptions(next));
  });
  const keys = [...new Set(histories.flatMap((m: IMetricHistories) => Object.keys(m.metrics)))].sort();
  for (const key of keys) {
    const lines: ILine[] = [];
    runs.forEach((run: IRun, i: number) => {
      const data = histories[i].metrics[key];
      if (data && data.step.length >= 1) {
        const started = Date.parse(run.start_time) / 1000;
        lines.push({ label: runLabel(run.name, run.id), color: colorFor(run.id), data, start: isNaN(started) ? 0 : started });
      }
    });
    if (lines.some(l => l.data.step.length >= 2)) {
      charts.push(new LineChart(key, lines, options));
    }
  }
  // metrics every ticked run logged once: labelled dots, not lines
  const dots = keys
    .filter(key => !histories.some((m: IMetricHistories) => (m.metrics[key]?.step.length ?? 0) >= 2))
    .map(key =>
      dotPlot(
        key,
        runs.flatMap((run: IRun, i: number) => {
          const value = histories[i].metrics[key]?.value[0];
          return typeof value === 'number' ? [{ id: run.id, label: runLabel(run.name, run.id), value, color: colorFor(run.id) }] : [];
        }),
        720
      )
    );
  const scope = { experiment: params.get('experiment') || undefined, where: params.get('where') || undefined };
  const across = new AcrossRuns(scope, ids);
  const grouped = h('div', { class: 'mlo-app-grouped' });
  const overlaid = h(
    'div',
    { class: 'mlo-app-overlaid' },
    charts.length ? h('div', { class: 'mlo-charts' }, charts.map(c => c.node)) : empty('No metric with two or more points in these runs.'),
    dots
  );
  let groupedDrawn: IDrawn | null = null;
  const groupBy = h('select', {
    class: 'mlo-app-group-by',
    'aria-label': 'group by',
    onchange: async () => {
      groupedDrawn?.disposables.forEach(d => d.dispose());
      groupedDrawn = null;
      grouped.replaceChildren();
      const group = (groupBy as HTMLSelectElement).value;
      overlaid.hidden = !!group;
      if (!group) {
        return;
      }
      try {
        const payload = await requestAPI<any>('compare', { view: 'histories', runs: ids.join(','), group, ...scope });
        groupedDrawn = drawPayload(payload, grouped, { chartOptions: options });
      } catch (error) {
        grouped.replaceChildren(errorLine(error));
      }
    }
  }) as HTMLSelectElement;
  const unwatch = onThemeChange(() => [...charts, ...(groupedDrawn?.disposables ?? [])].forEach(c => c.redraw?.()));
  const diffHost = h('div', { class: 'mlo-app-diff' });
  const pick = (n: number) =>
    h(
      'select',
      { class: `mlo-app-diff-${n}`, 'aria-label': n ? 'second run' : 'first run', onchange: () => showDiff() },
      runs.map((r: IRun, i: number) => h('option', { value: r.id, selected: i === n }, runLabel(r.name, r.id)))
    );
  const pa = pick(0);
  const pb = pick(1);
  const showDiff = () => {
    const diff = new DiffPage(h('div'), pa.value, pb.value, id => (location.hash = `#/run/${encodeURIComponent(id)}`));
    diffHost.replaceChildren(diff.node);
    void diff.load();
  };
  host.replaceChildren(
    h('h1', {}, `Compare ${runs.length} runs`),
    h(
      'ul',
      { class: 'mlo-app-legend' },
      runs.map((r: IRun) =>
        h('li', {}, h('span', { class: 'mlo-swatch', style: `background:${colorFor(r.id)}` }), link(`#/run/${encodeURIComponent(r.id)}`, runLabel(r.name, r.id), { title: r.id }), ' ', statusBadge(r.status))
      )
    ),
    h('section', { class: 'mlo-run-section mlo-cw', 'data-section': 'charts' }, h('h2', {}, 'Metric histories'),
      h('div', { class: 'mlo-app-toolbar' }, controls, h('label', {}, 'group by ', groupBy)), overlaid, grouped),
    h('section', { class: 'mlo-run-section mlo-cw', 'data-section': 'across' }, h('h2', {}, `Across the ${scope.where ? 'filtered' : 'experiment’s'} runs`), across.node),
    h('section', { class: 'mlo-run-section', 'data-section': 'table' }, h('h2', {}, 'Params and metrics'), compareTable(runs)),
    h('section', { class: 'mlo-run-section', 'data-section': 'diff' }, h('h2', {}, 'Two runs in detail'), h('div', { class: 'mlo-app-toolbar' }, pa, ' ↔ ', pb), diffHost)
  );
  showDiff();
  void across.load().then(choices => {
    groupBy.replaceChildren(h('option', { value: '' }, 'none'), ...(choices?.groups ?? []).map(g => h('option', { value: g }, shortName(g))));
  });
  return {
    dispose: () => {
      unwatch();
      charts.forEach(c => c.dispose());
      groupedDrawn?.disposables.forEach(d => d.dispose());
      across.dispose();
    }
  };
}

function shortName(column: string): string {
  return column.replace(/^(params|metrics|tags)\./, '');
}

interface IChoices {
  metrics: string[];
  params: string[];
  groups: string[];
  total: number;
}

const ACROSS_TABS: [string, string][] = [
  ['scatter', 'Metric vs param'],
  ['parallel', 'Parallel coordinates'],
  ['importance', 'Param importance']
];

/**
 * The notebook widget's charts over the runs the Runs page filtered (the `compare` endpoint draws the same JSON):
 * a metric against a param (grouped by a param or tag), parallel coordinates whose brushes become a filter for the
 * Runs page, and parameter importance.
 */
class AcrossRuns {
  readonly node: HTMLElement;

  constructor(
    private readonly _scope: { experiment?: string; where?: string },
    private readonly _ticked: string[]
  ) {
    this.node = h('div', { class: 'mlo-app-across' }, this._tabs, this._controls, this._status, this._body);
  }

  async load(): Promise<IChoices | null> {
    try {
      this._choices = await requestAPI<IChoices>('compare', { view: 'choices', ...this._scope });
    } catch (error) {
      this._body.replaceChildren(errorLine(error));
      return null;
    }
    this._state.metric = this._choices.metrics[0] ?? '';
    await this._show();
    return this._choices;
  }

  dispose(): void {
    this._drawn?.disposables.forEach(d => d.dispose());
    this._drawn = null;
  }

  private async _show(): Promise<void> {
    this._drawTabs();
    this._drawControls();
    const { tab, metric, param, group, logX } = this._state;
    const query: Record<string, string | undefined> = { view: tab, metric: metric || undefined, ...this._scope };
    if (tab === 'scatter') {
      Object.assign(query, { param: param || undefined, group: group || undefined, log_x: logX ? '1' : undefined });
    }
    const asked = JSON.stringify(query);
    this._asked = asked;
    this._status.replaceChildren();
    let payload: any;
    try {
      payload = await requestAPI<any>('compare', query);
    } catch (error) {
      if (this._asked === asked) {
        this.dispose();
        this._body.replaceChildren(errorLine(error));
      }
      return;
    }
    if (this._asked !== asked) {
      return; // a later choice's answer is on its way
    }
    if (tab === 'scatter' && payload.x && !param) {
      this._state.param = `params.${payload.x}`;
      this._drawControls();
    }
    this.dispose();
    this._body.replaceChildren();
    this._drawn = drawPayload(payload, this._body, {
      chartOptions: { ...DEFAULT_OPTIONS },
      onBrush: brush => void this._brushed(brush)
    });
  }

  private async _brushed(brush: Record<string, IBrushSpec>): Promise<void> {
    if (!Object.keys(brush).length) {
      this._status.replaceChildren();
      return;
    }
    try {
      const answer = await requestAPI<{ where: string | null; total: number }>('compare', {
        view: 'brush',
        brush: JSON.stringify(brush),
        ...this._scope
      });
      const where = [this._scope.where, answer.where].filter(Boolean).map(w => `(${w})`).join(' and ');
      const query = new URLSearchParams({ where });
      if (this._scope.experiment) {
        query.set('experiment', this._scope.experiment);
      }
      this._status.replaceChildren(
        h(
          'span',
          { class: 'mlo-app-brushed', 'data-total': String(answer.total) },
          `${answer.total.toLocaleString('en-US')} runs inside the brushes · `,
          link(`#/runs?${query}`, 'show them on the Runs page', { class: 'mlo-app-brushed-link', title: answer.where ?? '' })
        )
      );
    } catch (error) {
      this._status.replaceChildren(errorLine(error));
    }
  }

  private _drawTabs(): void {
    this._tabs.replaceChildren(
      ...ACROSS_TABS.map(([key, label]) =>
        h(
          'button',
          {
            class: key === this._state.tab ? 'mlo-cw-tab mlo-cw-tab-active' : 'mlo-cw-tab',
            role: 'tab',
            'data-tab': key,
            'aria-selected': String(key === this._state.tab),
            onclick: () => {
              this._state.tab = key;
              void this._show();
            }
          },
          label
        )
      )
    );
  }

  private _drawControls(): void {
    const choices = this._choices;
    if (!choices) {
      return;
    }
    const pick = (name: 'metric' | 'param' | 'group', label: string, values: string[], none?: string) =>
      h(
        'label',
        { class: `mlo-cw-${name === 'group' ? 'group_by' : name}` },
        `${label} `,
        h(
          'select',
          {
            onchange: (e: Event) => {
              this._state[name] = (e.target as HTMLSelectElement).value;
              void this._show();
            }
          },
          none !== undefined ? h('option', { value: '' }, none) : null,
          values.map(v => h('option', { value: v, selected: v === this._state[name] }, shortName(v)))
        )
      );
    const parts: (HTMLElement | null)[] = [pick('metric', 'metric', choices.metrics)];
    if (this._state.tab === 'scatter') {
      parts.push(
        pick('param', 'against', choices.params),
        h(
          'label',
          { class: 'mlo-cw-logx' },
          h('input', {
            type: 'checkbox',
            checked: this._state.logX,
            onchange: (e: Event) => {
              this._state.logX = (e.target as HTMLInputElement).checked;
              void this._show();
            }
          }),
          ' log x'
        ),
        pick('group', 'group by', choices.groups, 'none')
      );
    }
    parts.push(h('span', { class: 'mlo-m' }, `${choices.total.toLocaleString('en-US')} runs · ${this._ticked.length} ticked above`));
    this._controls.replaceChildren(...parts.filter((p): p is HTMLElement => p !== null));
  }

  private _choices: IChoices | null = null;
  private _state = { tab: 'scatter', metric: '', param: '', group: '', logX: false };
  private _asked = '';
  private _drawn: IDrawn | null = null;
  private _tabs = h('div', { class: 'mlo-cw-tabs', role: 'tablist' });
  private _controls = h('div', { class: 'mlo-cw-controls' });
  private _status = h('div', { class: 'mlo-app-status' });
  private _body = h('div', { class: 'mlo-cw-body' });
}

function compareTable(runs: IRun[]): HTMLElement {
  const rows: HTMLElement[] = [];
  for (const kind of ['params', 'metrics'] as const) {
    const keys = [...new Set(runs.flatMap(r => Object.keys(r[kind] ?? {})))].sort();
    for (const key of keys) {
      const values = runs.map(r => (r[kind] ?? {})[key]);
      const same = values.every(v => JSON.stringify(v) === JSON.stringify(values[0]));
      rows.push(
        h(
          'tr',
          { 'data-key': `${kind}.${key}`, class: same ? '' : 'mlo-differs' },
          h('th', { title: `${kind}.${key}` }, `${kind}.${key}`),
          values.map(v => h('td', { title: v === undefined ? '' : String(v) }, formatValue(v)))
        )
      );
    }
  }
  return h(
    'div',
    { class: 'mlo-app-table' },
    h(
      'table',
      { class: 'mlo-table mlo-app-compare-table' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), runs.map(r => h('th', { title: r.id }, runLabel(r.name, r.id))))),
      h('tbody', {}, rows)
    )
  );
}

// -- models, reports, traces -----------------------------------------------------------------------------------
/** The theme's variables that mlo's HTML reports read (each with a light fallback of its own). */
const REPORT_VARS = [
  '--jp-ui-font-color1',
  '--jp-ui-font-color2',
  '--jp-content-font-color1',
  '--jp-layout-color1',
  '--jp-layout-color2',
  '--jp-border-color2',
  '--jp-brand-color1',
  '--jp-error-color1',
  '--jp-success-color1',
  '--jp-warn-color1'
];

function sandboxed(title: string, html: string): HTMLElement {
  // the page's theme handed to the report as CSS variables (a sandboxed frame inherits none)
  const root = getComputedStyle(document.documentElement);
  const vars = REPORT_VARS.map(name => `${name}:${root.getPropertyValue(name).trim()}`).join(';');
  const theme =
    `<style>:root{${vars};color-scheme:${document.body.dataset.jpThemeLight === 'false' ? 'dark' : 'light'}}` +
    'body{background:var(--jp-layout-color1);color:var(--jp-ui-font-color1);font-family:system-ui,sans-serif}</style>';
  // no allow-* at all: the page runs no script and has no origin
  const page = /<head[^>]*>/i.test(html) ? html.replace(/<head[^>]*>/i, head => head + theme) : theme + html;
  return h('iframe', { class: 'mlo-app-frame', sandbox: '', srcdoc: page, title, referrerpolicy: 'no-referrer' });
}

function htmlOf(path: string): Promise<string> {
  return requestText(apiPath(path));
}

async function modelsPage(host: HTMLElement): Promise<void> {
  const { versions } = await api.models();
  if (!versions.length) {
    host.replaceChildren(h('h1', {}, 'Models'), empty('No registered models. Register one: mlo.register_model(model, "churn")'));
    return;
  }
  const rows = versions.map((v: IModelVersion) =>
    h(
      'tr',
      { 'data-model': v.name, 'data-version': v.version },
      h('td', {}, link(`#/model/${encodeURIComponent(v.name)}/${v.version}`, `${v.name}/${v.version}`, { class: 'mlo-app-model-link' })),
      h('td', {}, v.aliases ? String(v.aliases).split(',').filter(Boolean).map(a => h('span', { class: 'mlo-alias' }, a.trim())) : '–'),
      h('td', {}, v.flavor ?? '–'),
      h('td', {}, v.run_id ? link(`#/run/${encodeURIComponent(v.run_id)}`, v.run_id.slice(0, 10)) : '–'),
      h('td', {}, formatTime(v.created_at))
    )
  );
  host.replaceChildren(
    h('h1', {}, 'Models'),
    h(
      'table',
      { class: 'mlo-table mlo-app-models' },
      h('thead', {}, h('tr', {}, ['version', 'aliases', 'flavor', 'run', 'registered'].map(c => h('th', {}, c)))),
      h('tbody', {}, rows)
    )
  );
}

async function modelPage(host: HTMLElement, name: string, version: string): Promise<void> {
  const html = await htmlOf(`models/${encodeURIComponent(name)}/${encodeURIComponent(version)}/card`);
  host.replaceChildren(h('h1', {}, `${name}/${version}`), link('#/models', '‹ all models'), sandboxed(`model card ${name}/${version}`, html));
}

interface IReportRow {
  id: string;
  kind: string;
  subject: string | null;
  run_id: string | null;
  passed: boolean | null;
  created_at: number;
}

async function reportsPage(host: HTMLElement): Promise<void> {
  const page = await requestAPI<{ total: number; reports: IReportRow[] }>('reports', { limit: 1000 });
  if (!page.total) {
    host.replaceChildren(h('h1', {}, 'Reports'), empty('No validation, drift or monitoring reports yet.'));
    return;
  }
  host.replaceChildren(
    h('h1', {}, 'Reports'),
    h(
      'table',
      { class: 'mlo-table mlo-app-reports' },
      h('thead', {}, h('tr', {}, ['report', 'kind', 'subject', 'verdict', 'run', 'created'].map(c => h('th', {}, c)))),
      h(
        'tbody',
        {},
        page.reports.map(r =>
          h(
            'tr',
            { 'data-report-id': r.id, 'data-kind': r.kind },
            h('td', {}, link(`#/report/${r.id}`, r.id.slice(0, 10))),
            h('td', {}, r.kind),
            h('td', {}, r.subject ?? '–'),
            h('td', {}, r.passed === null ? '–' : statusBadge(r.passed ? 'finished' : 'failed')),
            h('td', {}, r.run_id ? link(`#/run/${encodeURIComponent(r.run_id)}`, r.run_id.slice(0, 10)) : '–'),
            h('td', {}, formatTime(new Date(r.created_at * 1000).toISOString()))
          )
        )
      )
    )
  );
}

async function reportPage(host: HTMLElement, id: string): Promise<void> {
  const html = await htmlOf(`reports/${encodeURIComponent(id)}`);
  host.replaceChildren(link('#/reports', '‹ all reports'), sandboxed(`report ${id}`, html));
}

async function tracesPage(host: HTMLElement, params: URLSearchParams): Promise<void> {
  const offset = Math.max(0, Number(params.get('offset') ?? 0) || 0);
  const page = await api.traces(offset, PAGE_SIZE);
  if (!page.total) {
    host.replaceChildren(h('h1', {}, 'Traces'), empty('No LLM traces yet: mlo.llm.autolog() records them.'));
    return;
  }
  host.replaceChildren(
    h('h1', {}, 'Traces'),
    h(
      'table',
      { class: 'mlo-table mlo-app-traces' },
      h('thead', {}, h('tr', {}, ['trace', 'status', 'start', 'duration', 'calls', 'cost'].map(c => h('th', {}, c)))),
      h(
        'tbody',
        {},
        page.traces.map(t =>
          h(
            'tr',
            { 'data-trace-id': t.trace_id },
            h('td', {}, link(`#/trace/${t.trace_id}`, t.name)),
            h('td', {}, t.status),
            h('td', {}, formatTime(t.start_time)),
            h('td', {}, formatDuration(t.duration)),
            h('td', {}, String(t.llm_calls)),
            h('td', {}, t.llm_calls ? formatUsd(t.cost_usd) : '–')
          )
        )
      )
    ),
    pager(page.total, offset, o => (location.hash = `#/traces?offset=${o}`))
  );
}

// -- the router -----------------------------------------------------------------------------------------------
async function route(): Promise<void> {
  current.dispose?.();
  current = {};
  const hash = location.hash.replace(/^#\/?/, '') || 'runs';
  const [path, query] = hash.split('?', 2);
  const params = new URLSearchParams(query ?? '');
  const parts = path.split('/').map(decodeURIComponent);
  const host = h('div', { class: 'mlo-app-page', 'data-page': parts[0] });
  main().replaceChildren(host);
  document.querySelectorAll('.mlo-app-nav a').forEach(a => a.classList.toggle('mlo-active', a.getAttribute('data-page') === parts[0]));
  try {
    switch (parts[0]) {
      case 'run': {
        const page = new RunPage(host, parts[1], id => (location.hash = `#/trace/${id}`), () => document.visibilityState === 'visible' && host.isConnected);
        current = { dispose: () => page.dispose() };
        await page.load();
        break;
      }
      case 'compare':
        current = await comparePage(host, params);
        break;
      case 'models':
        await modelsPage(host);
        break;
      case 'model':
        await modelPage(host, parts[1], parts[2]);
        break;
      case 'reports':
        await reportsPage(host);
        break;
      case 'report':
        await reportPage(host, parts[1]);
        break;
      case 'traces':
        await tracesPage(host, params);
        break;
      case 'trace':
        await new TracePage(host, parts[1], id => (location.hash = `#/run/${encodeURIComponent(id)}`)).load();
        break;
      default:
        await runsPage(host, params);
    }
  } catch (error) {
    host.replaceChildren(errorLine(error));
  }
  document.body.dataset.ready = 'true';
}

function start(): void {
  applyTheme();
  for (const query of ['(prefers-color-scheme: dark)', '(prefers-contrast: more)', '(forced-colors: active)']) {
    window.matchMedia(query).addEventListener('change', applyTheme);
  }
  const nav = h(
    'nav',
    { class: 'mlo-app-nav' },
    h('strong', { class: 'mlo-app-brand' }, 'mlo'),
    [
      ['runs', 'Runs'],
      ['models', 'Models'],
      ['reports', 'Reports'],
      ['traces', 'Traces']
    ].map(([page, label]) => link(`#/${page}`, label, { 'data-page': page })),
    isStatic() ? h('span', { class: 'mlo-app-badge', title: 'a static export: no live data, no filters' }, 'export') : null
  );
  document.body.replaceChildren(nav, h('main', { id: 'mlo-main' }));
  window.addEventListener('hashchange', () => void route());
  void route();
}

start();
