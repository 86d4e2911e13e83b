/**
 * The "MLO" sidebar panel: experiments (expandable to their runs, newest first, paged), registered models and
 * the newest LLM traces, refreshed every few seconds while the panel is visible. The user's state (which experiments are expanded,
 * which runs are checked, the metric shown per experiment, how many runs are loaded) lives here, apart from the
 * data, so a refresh never resets it.
 */
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { caretDownIcon, caretRightIcon, refreshIcon } from '@jupyterlab/ui-components';

import { api, ApiError, IExperiment, IModelVersion, IRunRow, ITraceRow } from './api';
import {
  FILTER_HELP,
  formatCount,
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

/** Runs fetched per page (the "more" button asks for the next page). */
export const PAGE_SIZE = 100;
/** Traces listed at first (the "more" button lists as many again). */
export const TRACE_PAGE = 20;
/** How often the visible panel refreshes itself, in milliseconds. */
export const POLL_INTERVAL = 5000;
const MAX_LIMIT = 1000; // the API's largest page
/** The most runs "select all" checks at once. */
export const MAX_SELECT = 10000;

export const COMPARE_COMMAND = 'mlo:compare-selected';
export const DIFF_COMMAND = 'mlo:diff-selected';

interface IExperimentState {
  info: IExperiment;
  expanded: boolean;
  runs: IRunRow[] | null; // loaded runs, newest first; null until first expanded
  wanted: number; // how many runs the user paged in (PAGE_SIZE per "more"); a refresh reloads that many
  ticket: number; // the latest load of this experiment's runs; an answer to an older one is dropped
  total: number;
  exact: boolean; // false: `total` is a lower bound (the API stopped counting there)
  loading: boolean;
  metric: string; // the metric column shown for each run; '' = the run's first metric
  error: string | null;
}

type StatusKind = 'error' | 'info';

export interface IPanelOptions {
  commands: CommandRegistry;
  openRun: (runId: string, label: string) => void;
  openTrace: (traceId: string, label: string) => void;
  /** More sections below Traces (e.g. Evaluations), refreshed with the panel. */
  sections?: { node: HTMLElement; refresh(): Promise<void> }[];
}

export class MloPanel extends Widget {
  constructor(options: IPanelOptions) {
    super();
    this._commands = options.commands;
    this._openRun = options.openRun;
    this._openTrace = options.openTrace;
    this.id = 'mlo-panel';
    this.addClass('mlo-panel');
    this.title.caption = 'MLO';

    this._selectionLabel = h('span', { class: 'mlo-selection-count' });
    const refresh = h(
      'button',
      {
        class: 'mlo-button mlo-icon-button mlo-refresh',
        title: 'Refresh',
        'aria-label': 'Refresh',
        onclick: () => void this.refresh()
      },
      refreshIcon.element({ tag: 'span', elementSize: 'normal' })
    );
    const compare = h(
      'button',
      {
        class: 'mlo-button mlo-compare',
        title: 'Compare selected runs: insert %mlo compare with the checked runs below the active notebook cell',
        'aria-label': 'Compare selected runs',
        onclick: () => void this._commands.execute(COMPARE_COMMAND)
      },
      'Compare'
    );
    const diff = h(
      'button',
      {
        class: 'mlo-button mlo-diff',
        title: 'Diff the two checked runs: params, metrics, code, environment and git in a tab',
        'aria-label': 'Diff two selected runs',
        onclick: () => void this._commands.execute(DIFF_COMMAND)
      },
      'Diff'
    );
    const clear = h(
      'button',
      {
        class: 'mlo-button mlo-link mlo-clear-selection',
        title: 'Uncheck all runs',
        onclick: () => this.clearSelection()
      },
      'clear'
    );
    this._statusLine = h('div', { class: 'mlo-status-line', role: 'status', 'aria-live': 'polite' });
    this._search = h('input', {
      class: 'mlo-search',
      type: 'search',
      placeholder: 'filter runs, e.g. metrics.auc > 0.8',
      'aria-label': 'filter runs',
      title: FILTER_HELP,
      spellcheck: 'false',
      onkeydown: (event: Event) => {
        if ((event as KeyboardEvent).key === 'Enter') {
          void this.setFilter(this._search.value);
        }
      },
      onsearch: () => void (this._search.value === '' && this.setFilter(''))
    });
    this._filterInfo = h('div', { class: 'mlo-filter-info mlo-hidden' });
    this._experimentsBody = h('div', { class: 'mlo-section-body mlo-experiments' });
    this._modelsBody = h('div', { class: 'mlo-section-body mlo-models' });
    this._tracesBody = h('div', { class: 'mlo-section-body mlo-traces' });

    this.node.appendChild(
      h(
        'div',
        { class: 'mlo-header' },
        h('h2', { class: 'mlo-title' }, 'MLO'),
        h('div', { class: 'mlo-toolbar' }, refresh)
      )
    );
    this.node.appendChild(h('div', { class: 'mlo-selection' }, this._selectionLabel, clear, diff, compare));
    this.node.appendChild(
      h(
        'div',
        { class: 'mlo-filter' },
        this._search,
        h('span', { class: 'mlo-filter-help', title: FILTER_HELP, 'aria-label': FILTER_HELP }, '?')
      )
    );
    this.node.appendChild(this._filterInfo);
    this.node.appendChild(this._statusLine);
    const scroller = h(
      'div',
      { class: 'mlo-scroll' },
      h(
        'section',
        { class: 'mlo-section', 'data-section': 'experiments' },
        h('h3', { class: 'mlo-section-title' }, 'Experiments'),
        this._experimentsBody
      ),
      h(
        'section',
        { class: 'mlo-section', 'data-section': 'models' },
        h('h3', { class: 'mlo-section-title' }, 'Models'),
        this._modelsBody
      ),
      h(
        'section',
        { class: 'mlo-section', 'data-section': 'traces' },
        h('h3', { class: 'mlo-section-title' }, 'Traces'),
        this._tracesBody
      )
    );
    this._sections = options.sections ?? [];
    this._sections.forEach(section => scroller.appendChild(section.node));
    this.node.appendChild(scroller);
    this._renderSelection();
  }

  /** Full ids of the checked runs, in the panel's order (experiment by experiment, newest run first), then the
   * checked runs not listed now (hidden by the filter, or not paged in) in the order they were checked. */
  selectedRunIds(): string[] {
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const name of this._order) {
      for (const run of this._experiments.get(name)?.runs ?? []) {
        if (this._selected.has(run.run_id) && !seen.has(run.run_id)) {
          seen.add(run.run_id);
          ids.push(run.run_id);
        }
      }
    }
    return ids.concat([...this._selected].filter(id => !seen.has(id)));
  }

  /** Check every run the filter matches (up to `MAX_SELECT`), listed or not. */
  async selectMatching(): Promise<void> {
    const where = this._where;
    const ids: string[] = [];
    try {
      for (let offset = 0; offset < MAX_SELECT; offset += MAX_LIMIT) {
        const page = await api.runIds(where, offset, Math.min(MAX_LIMIT, MAX_SELECT - offset));
        ids.push(...page.runs.map(r => r.run_id));
        if (page.runs.length < MAX_LIMIT || (page.total_exact !== false && ids.length >= page.total)) {
          break;
        }
      }
    } catch (error) {
      this.setStatus(messageOf(error), 'error');
      return;
    }
    if (where !== this._where) {
      return; // the filter changed meanwhile
    }
    ids.forEach(id => this._selected.add(id));
    this._renderExperiments();
  }

  /** The `where` filter the run lists show (as `mlo.runs(where=...)`; '' shows every run). A filter the API
   * refuses is reported in the status line and leaves the lists as they were. */
  async setFilter(where: string): Promise<void> {
    where = where.trim();
    this._search.value = where;
    if (where) {
      let total: number;
      let exact: boolean;
      try {
        const first = await api.runs(undefined, 0, 1, where);
        total = first.total;
        exact = first.total_exact !== false;
      } catch (error) {
        this._filterError = messageOf(error);
        this.setStatus(this._filterError, 'error');
        return;
      }
      const count = h('span', { class: 'mlo-filter-count' }, `${formatCount(total, exact)} run${total === 1 && exact ? '' : 's'} match`);
      this._filterInfo.replaceChildren(count);
      if (total) {
        this._filterInfo.appendChild(
          h(
              'button',
              {
                class: 'mlo-link mlo-select-matching',
                title: `Check every run the filter matches (at most ${MAX_SELECT.toLocaleString('en-US')})`,
                onclick: () => void this.selectMatching()
              },
              total > MAX_SELECT ? `select the first ${MAX_SELECT.toLocaleString('en-US')}` : 'select all'
            )
        );
      }
    } else {
      this._filterInfo.textContent = '';
    }
    if (this._status?.kind === 'error') {
      this.setStatus('');
    }
    this._filterError = null;
    this._filterInfo.classList.toggle('mlo-hidden', !where);
    this._where = where;
    this.node.dataset.filter = where;
    for (const exp of this._experiments.values()) {
      exp.ticket += 1; // an answer still coming for the old filter is dropped
      exp.runs = null;
      exp.wanted = PAGE_SIZE;
      exp.expanded = exp.expanded || Boolean(where); // a filter shows its matches in every experiment
    }
    this._renderExperiments();
    await this._refreshing; // a refresh under way asked with the old filter: a new one follows it
    await this.refresh();
  }

  /** The filter in force ('' when none). */
  get filter(): string {
    return this._where;
  }

  clearSelection(): void {
    this._selected.clear();
    this._renderExperiments();
    this._renderSelection();
  }

  /** Show a one-line message in the panel (an error stays until the next successful refresh). */
  setStatus(text: string, kind: StatusKind = 'info'): void {
    this._status = text ? { text, kind } : null;
    window.clearTimeout(this._statusTimer);
    if (text && kind === 'info') {
      this._statusTimer = window.setTimeout(() => this.setStatus(''), 10000);
    }
    this._statusLine.textContent = text;
    this._statusLine.title = text;
    this._statusLine.dataset.kind = text ? kind : '';
    this._statusLine.classList.toggle('mlo-hidden', !text);
  }

  /** Fetch experiments, the runs of the expanded ones (as many as are loaded) and the models. */
  refresh(): Promise<void> {
    if (!this._refreshing) {
      const sections = Promise.all(this._sections.map(section => section.refresh()));
      this._refreshing = Promise.all([this._refresh(), sections]).then(() => undefined).finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  private async _refresh(): Promise<void> {
    let failure: string | null = null;
    try {
      const experiments = await api.experiments();
      this._mergeExperiments(experiments);
      await Promise.all(
        this._order
          .map(name => this._experiments.get(name)!)
          .filter(exp => exp.expanded)
          .map(exp => this._reloadRuns(exp))
      );
      this._loaded = true;
    } catch (error) {
      failure = messageOf(error);
    }
    try {
      this._models = (await api.models()).versions;
      this._modelsLoaded = true;
    } catch (error) {
      failure = failure ?? messageOf(error);
    }
    try {
      const page = await api.traces(0, this._tracesWanted);
      this._traces = page.traces;
      this._tracesTotal = page.total;
      this._tracesLoaded = true;
    } catch (error) {
      failure = failure ?? messageOf(error);
    }
    if (failure) {
      this.setStatus(failure, 'error');
    } else if (this._status?.kind === 'error' && !this._filterError) {
      this.setStatus(''); // a refused filter stays reported until the filter changes
    }
    this._renderIfChanged();
  }

  private _mergeExperiments(experiments: IExperiment[]): void {
    const order: string[] = [];
    for (const info of experiments) {
      const known = this._experiments.get(info.name);
      if (known) {
        known.info = info;
      } else {
        this._experiments.set(info.name, {
          info,
          expanded: false,
          runs: null,
          wanted: PAGE_SIZE,
          ticket: 0,
          total: info.runs,
          exact: true,
          loading: false,
          metric: '',
          error: null
        });
      }
      order.push(info.name);
    }
    for (const name of [...this._experiments.keys()]) {
      if (!order.includes(name)) {
        this._experiments.delete(name);
      }
    }
    this._order = order;
  }

  /** Reload the first runs of an experiment, as many as the user paged in. */
  private async _reloadRuns(exp: IExperimentState): Promise<void> {
    const ticket = ++exp.ticket;
    const wanted = Math.max(PAGE_SIZE, exp.wanted);
    const rows: IRunRow[] = [];
    let total = 0;
    let exact = true;
    try {
      for (let offset = 0; offset < wanted; offset += MAX_LIMIT) {
        const page = await api.runs(exp.info.name, offset, Math.min(MAX_LIMIT, wanted - offset), this._where);
        rows.push(...page.runs);
        total = page.total;
        exact = page.total_exact !== false;
        if (page.runs.length === 0 || (exact && rows.length >= total)) {
          break;
        }
      }
      if (ticket !== exp.ticket) {
        return; // superseded by a newer load ("more", or a refresh started since)
      }
      exp.runs = dedupe(rows);
      exp.total = exact || rows.length >= wanted ? total : rows.length;
      exp.exact = exact || rows.length < wanted;
      exp.error = null;
    } catch (error) {
      if (ticket === exp.ticket) {
        exp.error = messageOf(error);
      }
    }
  }

  private async _toggle(exp: IExperimentState): Promise<void> {
    exp.expanded = !exp.expanded;
    if (exp.expanded) {
      exp.loading = exp.runs === null;
      this._renderExperiments();
      await this._reloadRuns(exp);
      exp.loading = false;
    }
    this._renderExperiments();
  }

  /** The next page: `offset` = the runs loaded so far, `limit` = PAGE_SIZE. */
  private async _more(exp: IExperimentState): Promise<void> {
    const loaded = exp.runs?.length ?? 0;
    const ticket = ++exp.ticket;
    exp.wanted = Math.max(exp.wanted, loaded) + PAGE_SIZE; // what later refreshes reload
    exp.loading = true;
    this._renderExperiments();
    try {
      const page = await api.runs(exp.info.name, loaded, PAGE_SIZE, this._where);
      if (ticket === exp.ticket) {
        exp.runs = dedupe([...(exp.runs ?? []), ...page.runs]);
        // a short page is the last: what is loaded is then every match, however the API counted
        const last = page.runs.length < PAGE_SIZE;
        exp.total = last ? exp.runs.length : Math.max(page.total, exp.runs.length);
        exp.exact = last || page.total_exact !== false;
        exp.error = null;
      }
    } catch (error) {
      if (ticket === exp.ticket) {
        exp.error = messageOf(error);
      }
    }
    exp.loading = false;
    this._renderExperiments();
  }

  // -- rendering ---------------------------------------------------------------------------------------------------

  private _renderIfChanged(): void {
    const signature = JSON.stringify([
      this._loaded,
      this._modelsLoaded,
      this._order.map(name => {
        const exp = this._experiments.get(name)!;
        return [exp.info, exp.runs, exp.total, exp.exact, exp.error];
      }),
      this._models,
      this._tracesLoaded,
      this._traces,
      this._tracesTotal
    ]);
    if (signature !== this._signature) {
      this._signature = signature;
      this._renderExperiments();
      this._renderModels();
      this._renderTraces();
    }
  }

  private _renderExperiments(): void {
    const body = this._experimentsBody;
    const focusKey = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
    body.replaceChildren();
    if (!this._order.length) {
      if (this._loaded) {
        body.appendChild(
          h('p', { class: 'mlo-empty' }, 'No runs yet: runs appear here as soon as a notebook tracks one.')
        );
      }
    }
    for (const name of this._order) {
      body.appendChild(this._renderExperiment(this._experiments.get(name)!));
    }
    if (focusKey) {
      body.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    }
    this._renderSelection();
  }

  private _renderExperiment(exp: IExperimentState): HTMLElement {
    const name = exp.info.name;
    const caret = (exp.expanded ? caretDownIcon : caretRightIcon).element({ tag: 'span', elementSize: 'small' });
    const header = h(
      'div',
      { class: 'mlo-experiment-header' },
      h(
        'button',
        {
          class: 'mlo-experiment-toggle',
          'aria-expanded': String(exp.expanded),
          title: exp.expanded ? 'Collapse' : 'Show the runs',
          'data-focus-key': `toggle:${name}`,
          onclick: () => void this._toggle(exp)
        },
        caret,
        h('span', { class: 'mlo-experiment-name' }, name)
      ),
      h(
        'span',
        { class: 'mlo-count', title: this._where && exp.expanded ? 'runs matching the filter' : 'runs' },
        exp.expanded ? formatCount(exp.total, exp.exact) : String(exp.info.runs)
      )
    );
    const node = h(
      'div',
      { class: 'mlo-experiment', 'data-experiment': name, 'data-expanded': String(exp.expanded) },
      header
    );
    if (!exp.expanded) {
      return node;
    }
    const runs = exp.runs ?? [];
    const metrics = metricColumns(runs);
    if (metrics.length) {
      const select = h(
        'select',
        {
          class: 'mlo-metric-select',
          title: 'The metric shown for each run',
          'aria-label': `metric shown for the runs of ${name}`,
          'data-focus-key': `metric:${name}`,
          onchange: (event: Event) => {
            exp.metric = (event.target as HTMLSelectElement).value;
            this._renderExperiments();
          }
        },
        h('option', { value: '' }, 'first metric'),
        metrics.map(column => h('option', { value: column }, column.slice('metrics.'.length)))
      );
      select.value = metrics.includes(exp.metric) ? exp.metric : '';
      header.insertBefore(select, header.lastChild);
    }
    if (exp.error) {
      node.appendChild(h('div', { class: 'mlo-error' }, exp.error));
    }
    const list = h('ul', { class: 'mlo-runs' });
    for (const run of runs) {
      list.appendChild(this._renderRun(run, exp.metric));
    }
    node.appendChild(list);
    if (exp.loading) {
      node.appendChild(h('div', { class: 'mlo-loading' }, 'loading…'));
    } else if (exp.runs !== null && !runs.length) {
      node.appendChild(h('p', { class: 'mlo-empty' }, this._where ? 'No run matches the filter.' : 'No runs.'));
    }
    if ((runs.length < exp.total || !exp.exact) && !exp.loading) {
      node.appendChild(
        h(
          'button',
          {
            class: 'mlo-button mlo-more',
            'data-focus-key': `more:${name}`,
            onclick: () => void this._more(exp)
          },
          `more (${runs.length} of ${formatCount(exp.total, exp.exact)} shown)`
        )
      );
    }
    return node;
  }

  private _renderRun(run: IRunRow, metric: string): HTMLElement {
    const id = run.run_id;
    const label = runLabel(run.name, id);
    const checkbox = h('input', {
      type: 'checkbox',
      class: 'mlo-run-check',
      'data-run-id': id,
      'data-focus-key': `check:${id}`,
      'aria-label': `select run ${label}`,
      onchange: (event: Event) => {
        if ((event.target as HTMLInputElement).checked) {
          this._selected.add(id);
        } else {
          this._selected.delete(id);
        }
        this._renderSelection();
      }
    });
    checkbox.checked = this._selected.has(id);
    const [key, value] = keyMetric(run, metric);
    return h(
      'li',
      { class: 'mlo-run', 'data-run-id': id, 'data-status': run.status },
      checkbox,
      h(
        'button',
        {
          class: 'mlo-link mlo-run-name',
          'data-run-id': id,
          'data-focus-key': `open:${id}`,
          title: `${label}\n${id}\nstarted ${formatTime(run.start_time)}`,
          onclick: () => this._openRun(id, label)
        },
        label
      ),
      statusBadge(run.status),
      h(
        'span',
        { class: 'mlo-run-metric', 'data-metric': key ?? '', title: key ? `${key}: ${String(value)}` : '' },
        key
          ? [h('span', { class: 'mlo-metric-key' }, key), ' ', h('span', { class: 'mlo-metric-value' }, formatValue(value))]
          : ''
      )
    );
  }

  private _renderModels(): void {
    const body = this._modelsBody;
    body.replaceChildren();
    if (!this._models.length) {
      if (this._modelsLoaded) {
        body.appendChild(h('p', { class: 'mlo-empty' }, 'No registered models.'));
      }
      return;
    }
    const byName = new Map<string, IModelVersion[]>();
    for (const row of this._models) {
      const rows = byName.get(row.name) ?? [];
      rows.push(row);
      byName.set(row.name, rows);
    }
    for (const [name, versions] of byName) {
      body.appendChild(
        h(
          'div',
          { class: 'mlo-model', 'data-model': name },
          h(
            'div',
            { class: 'mlo-model-header' },
            h('span', { class: 'mlo-model-name' }, name),
            h('span', { class: 'mlo-count', title: 'versions' }, String(versions.length))
          ),
          h(
            'ul',
            { class: 'mlo-model-versions' },
            versions.map(v => this._renderModelVersion(v))
          )
        )
      );
    }
  }

  private _renderModelVersion(v: IModelVersion): HTMLElement {
    const aliases = (v.aliases || '')
      .split(',')
      .map(a => a.trim())
      .filter(Boolean);
    const runId = v.run_id;
    return h(
      'li',
      {
        class: 'mlo-model-version',
        'data-model': v.name,
        'data-version': v.version,
        title: [v.model_class, v.flavor, v.created_at && `registered ${formatTime(v.created_at)}`]
          .filter(Boolean)
          .join(' · ')
      },
      h('span', { class: 'mlo-version' }, `v${v.version}`),
      aliases.map(alias => h('span', { class: 'mlo-alias', 'data-alias': alias }, alias)),
      h('span', { class: 'mlo-model-class' }, v.model_class || v.flavor || ''),
      runId
        ? h(
            'button',
            {
              class: 'mlo-link mlo-model-run',
              'data-run-id': runId,
              title: `open run ${runId}`,
              onclick: () => this._openRun(runId, runId.slice(0, 10))
            },
            'run'
          )
        : null
    );
  }

  private _renderTraces(): void {
    const body = this._tracesBody;
    const focusKey = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
    body.replaceChildren();
    if (!this._traces.length) {
      if (this._tracesLoaded) {
        body.appendChild(
          h('p', { class: 'mlo-empty' }, 'No LLM traces: mlo.llm.chat, mlo.llm.autolog() or @mlo.trace record them.')
        );
      }
      return;
    }
    body.appendChild(h('ul', { class: 'mlo-trace-list' }, this._traces.map(t => this._renderTrace(t))));
    if (this._traces.length < this._tracesTotal) {
      body.appendChild(
        h(
          'button',
          {
            class: 'mlo-button mlo-more mlo-traces-more',
            'data-focus-key': 'more:traces',
            onclick: () => void this._moreTraces()
          },
          `more (${this._traces.length} of ${this._tracesTotal} shown)`
        )
      );
    }
    if (focusKey) {
      body.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    }
  }

  private _renderTrace(t: ITraceRow): HTMLElement {
    const tokens = formatTokens({
      input: t.input_tokens,
      output: t.output_tokens,
      cached: t.cached_tokens,
      reasoning: t.reasoning_tokens
    });
    const details = [
      `trace ${t.trace_id}`,
      `started ${formatTime(t.start_time)}`,
      `${t.spans} span${t.spans === 1 ? '' : 's'}, ${t.llm_calls} LLM call${t.llm_calls === 1 ? '' : 's'}`,
      t.llm_calls ? `${tokens}, ${formatUsd(t.cost_usd)}` : null,
      t.models ? `model ${t.models}` : null,
      t.prompts ? `prompt ${t.prompts}` : null,
      t.run_id ? `run ${t.run_id.slice(0, 10)}` : null,
      t.cell !== null ? `cell In [${t.cell}]` : null,
      t.replayed ? 'replayed' : null,
      t.error
    ];
    return h(
      'li',
      { class: 'mlo-trace', 'data-trace-id': t.trace_id, 'data-status': t.status },
      h(
        'button',
        {
          class: 'mlo-link mlo-trace-name',
          'data-trace-id': t.trace_id,
          'data-focus-key': `trace:${t.trace_id}`,
          title: details.filter(Boolean).join('\n'),
          onclick: () => this._openTrace(t.trace_id, t.name)
        },
        t.name
      ),
      traceStatusBadge(t.status),
      h(
        'span',
        { class: 'mlo-trace-figures' },
        t.llm_calls ? formatUsd(t.cost_usd) : `${t.spans} span${t.spans === 1 ? '' : 's'}`,
        ' · ',
        t.status === 'running' ? 'running' : formatDuration(t.duration)
      )
    );
  }

  private async _moreTraces(): Promise<void> {
    this._tracesWanted = Math.min(MAX_LIMIT, Math.max(this._tracesWanted, this._traces.length) + TRACE_PAGE);
    try {
      const page = await api.traces(0, this._tracesWanted);
      this._traces = page.traces;
      this._tracesTotal = page.total;
    } catch (error) {
      this.setStatus(messageOf(error), 'error');
    }
    this._renderIfChanged();
  }

  private _renderSelection(): void {
    const count = this.selectedRunIds().length;
    this._selectionLabel.textContent = count
      ? `${count} run${count === 1 ? '' : 's'} selected`
      : 'Check runs to compare';
    this._selectionLabel.parentElement?.classList.toggle('mlo-has-selection', count > 0);
  }

  // -- live refresh while visible ----------------------------------------------------------------------------------

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this._startPolling();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._startPolling();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._stopPolling();
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopPolling();
    super.onBeforeDetach(msg);
  }

  dispose(): void {
    this._stopPolling();
    window.clearTimeout(this._statusTimer);
    super.dispose();
  }

  private _startPolling(): void {
    if (this._timer !== undefined) {
      return;
    }
    void this.refresh();
    this._timer = window.setInterval(() => {
      if (this.isVisible && document.visibilityState !== 'hidden') {
        void this.refresh();
      }
    }, POLL_INTERVAL);
  }

  private _stopPolling(): void {
    if (this._timer !== undefined) {
      window.clearInterval(this._timer);
      this._timer = undefined;
    }
  }

  private _commands: CommandRegistry;
  private _openRun: (runId: string, label: string) => void;
  private _openTrace: (traceId: string, label: string) => void;
  private _sections: { node: HTMLElement; refresh(): Promise<void> }[];
  private _experiments = new Map<string, IExperimentState>();
  private _order: string[] = [];
  private _selected = new Set<string>();
  private _models: IModelVersion[] = [];
  private _loaded = false;
  private _modelsLoaded = false;
  private _traces: ITraceRow[] = [];
  private _tracesTotal = 0;
  private _tracesWanted = TRACE_PAGE;
  private _tracesLoaded = false;
  private _signature = '';
  private _status: { text: string; kind: StatusKind } | null = null;
  private _statusTimer: number | undefined = undefined;
  private _timer: number | undefined = undefined;
  private _refreshing: Promise<void> | null = null;
  private _selectionLabel: HTMLSpanElement;
  private _search: HTMLInputElement;
  private _filterInfo: HTMLDivElement;
  private _where = '';
  private _filterError: string | null = null;
  private _statusLine: HTMLDivElement;
  private _experimentsBody: HTMLDivElement;
  private _modelsBody: HTMLDivElement;
  private _tracesBody: HTMLDivElement;
}

function messageOf(error: unknown): string {
  if (error instanceof ApiError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

function dedupe(rows: IRunRow[]): IRunRow[] {
  const seen = new Set<string>();
  return rows.filter(row => (seen.has(row.run_id) ? false : (seen.add(row.run_id), true)));
}

/** The `metrics.*` columns of the loaded runs, in the API's column order. */
function metricColumns(runs: IRunRow[]): string[] {
  const columns = new Set<string>();
  for (const run of runs) {
    for (const key of Object.keys(run)) {
      if (key.startsWith('metrics.')) {
        columns.add(key);
      }
    }
  }
  return [...columns];
}

/** The metric shown for a run: the chosen column, else the first metric column the run has a value in. */
function keyMetric(run: IRunRow, chosen: string): [string | null, unknown] {
  if (chosen) {
    return [chosen.slice('metrics.'.length), run[chosen]];
  }
  for (const [key, value] of Object.entries(run)) {
    if (key.startsWith('metrics.') && value !== null && value !== undefined) {
      return [key.slice('metrics.'.length), value];
    }
  }
  return [null, null];
}
