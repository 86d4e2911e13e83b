/**
 * LLM evaluations in JupyterLab: the panel's "Evaluations" section (stored `llm_eval` reports, newest first, with
 * their scorers' means and gate) and a main-area tab comparing two of them — per scorer both means, the paired
 * difference and its 95% interval; per example both outputs and the score deltas, the largest changes first.
 */
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './api';
import { formatUsd, formatValue, h } from './dom';
import { mloIcon } from './icons';

/** One row of `GET /mlo/api/evals`. */
export interface IEvalRow {
  id: string;
  created: number;
  subject: string | null;
  prompt: string | null;
  app: string | null;
  data: string | null;
  rows: number | null;
  repeats: number | null;
  passed: boolean | null;
  means: Record<string, number | null>;
  cost_usd: number | null;
  failure_rate: number | null;
}

interface IEvalSide {
  id: string;
  label: string;
  data: string;
  rows: number;
  passed: boolean | null;
  cost_usd: number | null;
}

interface IScorerDelta {
  a: number | null;
  b: number | null;
  delta: number | null;
  ci_low: number | null;
  ci_high: number | null;
  rows: number;
  same_version: boolean;
}

interface IExample {
  index: number;
  inputs: Record<string, unknown>;
  expected: unknown;
  output_a: string | null;
  output_b: string | null;
  scores: Record<string, { a: number | null; b: number | null; delta: number | null }>;
}

/** `GET /mlo/api/evals/compare?a=&b=`. */
export interface IEvalComparison {
  a: IEvalSide;
  b: IEvalSide;
  scorers: Record<string, IScorerDelta>;
  examples: IExample[];
  total_examples: number;
}

export const evalApi = {
  list: () => requestAPI<{ evals: IEvalRow[]; total: number }>('evals', { limit: 100 }),
  compare: (a: string, b: string) => requestAPI<IEvalComparison>('evals/compare', { a, b })
};

function evalLabel(e: IEvalRow): string {
  return e.prompt || e.app || e.id.slice(0, 10);
}

function signed(value: number | null): string {
  if (value === null || value === undefined) {
    return '–';
  }
  return (value > 0 ? '+' : '') + formatValue(value);
}

function deltaClass(value: number | null): string {
  return value === null || value === 0 ? 'mlo-delta' : value > 0 ? 'mlo-delta mlo-delta-up' : 'mlo-delta mlo-delta-down';
}

/** The panel's "Evaluations" section: check two and press Compare. */
export class EvalSection {
  readonly node: HTMLElement;

  constructor(private readonly _openCompare: (a: string, b: string, label: string) => void) {
    this._compare = h(
      'button',
      {
        class: 'mlo-button mlo-evals-compare',
        disabled: true,
        title: 'Compare the two checked evaluations (the older one is the baseline)',
        onclick: () => this._compareChecked()
      },
      'Compare'
    );
    this._body = h('div', { class: 'mlo-section-body mlo-evals' });
    this.node = h(
      'section',
      { class: 'mlo-section', 'data-section': 'evals' },
      h('h3', { class: 'mlo-section-title' }, 'Evaluations', this._compare),
      this._body
    );
  }

  async refresh(): Promise<void> {
    try {
      const page = await evalApi.list();
      this._evals = page.evals;
      this._loaded = true;
      this._error = null;
    } catch (error) {
      this._error = (error as Error).message;
    }
    this._render();
  }

  private _render(): void {
    const known = new Set(this._evals.map(e => e.id));
    this._checked = this._checked.filter(id => known.has(id));
    if (this._error) {
      this._body.replaceChildren(h('p', { class: 'mlo-status-line', 'data-kind': 'error' }, this._error));
    } else if (!this._evals.length) {
      this._body.replaceChildren(
        this._loaded
          ? h('p', { class: 'mlo-empty' }, 'No evaluations: mlo.llm.evaluate(...) or %mlo eval records them.')
          : h('p', { class: 'mlo-empty' }, 'Loading…')
      );
    } else {
      this._body.replaceChildren(h('ul', { class: 'mlo-eval-list' }, this._evals.map(e => this._renderEval(e))));
    }
    this._compare.disabled = this._checked.length !== 2;
    this._compare.textContent = this._checked.length === 2 ? 'Compare' : `Compare (${this._checked.length}/2)`;
  }

  private _renderEval(e: IEvalRow): HTMLElement {
    const means = Object.entries(e.means)
      .map(([k, v]) => `${k} ${formatValue(v)}`)
      .join(' · ');
    const gate =
      e.passed === null
        ? null
        : h('span', { class: 'mlo-status', 'data-status': e.passed ? 'finished' : 'failed' }, e.passed ? 'passed' : 'failed');
    return h(
      'li',
      { class: 'mlo-eval', 'data-eval-id': e.id },
      h('input', {
        type: 'checkbox',
        class: 'mlo-eval-check',
        'aria-label': `select evaluation ${evalLabel(e)}`,
        checked: this._checked.includes(e.id),
        onchange: (event: Event) => this._toggle(e.id, (event.target as HTMLInputElement).checked)
      }),
      h('span', { class: 'mlo-eval-name', title: `evaluation ${e.id}` }, evalLabel(e)),
      gate,
      h(
        'div',
        { class: 'mlo-eval-figures' },
        [`${e.data ?? ''}`, e.rows !== null ? `${e.rows} rows` : null, means].filter(Boolean).join(' · ')
      )
    );
  }

  private _toggle(id: string, on: boolean): void {
    this._checked = this._checked.filter(x => x !== id);
    if (on) {
      this._checked.push(id);
      if (this._checked.length > 2) {
        this._checked.shift(); // two at most: the oldest check goes
      }
    }
    this._render();
  }

  private _compareChecked(): void {
    if (this._checked.length !== 2) {
      return;
    }
    // the older evaluation is the baseline (a), the newer the candidate (b)
    const rows = this._checked.map(id => this._evals.find(e => e.id === id)!).sort((x, y) => x.created - y.created);
    this._openCompare(rows[0].id, rows[1].id, `${evalLabel(rows[0])} → ${evalLabel(rows[1])}`);
  }

  private _evals: IEvalRow[] = [];
  private _checked: string[] = [];
  private _loaded = false;
  private _error: string | null = null;
  private _body: HTMLDivElement;
  private _compare: HTMLButtonElement;
}

/** Two evaluations side by side in a main-area tab. */
export class EvalCompareView extends Widget {
  constructor(
    readonly a: string,
    readonly b: string
  ) {
    super();
    this.addClass('mlo-eval-compare');
    this.node.dataset.a = a;
    this.node.dataset.b = b;
    this.node.tabIndex = -1;
  }

  async load(): Promise<IEvalComparison | null> {
    this.node.classList.add('mlo-busy');
    try {
      this._cmp = await evalApi.compare(this.a, this.b);
      this._render(this._cmp);
    } catch (error) {
      this.node.replaceChildren(h('div', { class: 'mlo-status-line', 'data-kind': 'error' }, (error as Error).message));
    } finally {
      this.node.classList.remove('mlo-busy');
    }
    return this._cmp;
  }

  private _render(c: IEvalComparison): void {
    const names = Object.keys(c.scorers);
    const side = (s: IEvalSide, role: string) =>
      h(
        'tr',
        { 'data-side': role },
        h('th', {}, role),
        h('td', { class: 'mlo-eval-label' }, s.label),
        h('td', {}, s.data),
        h('td', {}, String(s.rows)),
        h('td', {}, s.passed === null ? '–' : s.passed ? 'passed' : 'failed'),
        h('td', {}, formatUsd(s.cost_usd))
      );
    const scorers = h(
      'table',
      { class: 'mlo-table mlo-eval-scorers' },
      h(
        'thead',
        {},
        h('tr', {}, ['scorer', c.a.label, c.b.label, 'Δ', 'Δ 95% CI', 'rows'].map(t => h('th', {}, t)))
      ),
      h(
        'tbody',
        {},
        names.map(n => {
          const d = c.scorers[n];
          return h(
            'tr',
            { 'data-scorer': n },
            h('th', {}, n, d.same_version ? null : h('span', { class: 'mlo-eval-warn', title: 'the two reports used different versions of this scorer' }, ' ≠')),
            h('td', {}, formatValue(d.a)),
            h('td', {}, formatValue(d.b)),
            h('td', { class: deltaClass(d.delta) }, signed(d.delta)),
            h('td', {}, d.ci_low === null ? '–' : `[${signed(d.ci_low)}, ${signed(d.ci_high)}]`),
            h('td', {}, String(d.rows))
          );
        })
      )
    );
    const examples = h(
      'table',
      { class: 'mlo-table mlo-eval-examples' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['#', 'inputs', 'expected', c.a.label, c.b.label, ...names.map(n => `Δ ${n}`)].map(t => h('th', {}, t))
        )
      ),
      h(
        'tbody',
        {},
        c.examples.map(e =>
          h(
            'tr',
            { class: 'mlo-eval-example', 'data-index': e.index },
            h('td', {}, String(e.index)),
            h('td', { class: 'mlo-eval-text' }, Object.values(e.inputs).map(v => formatText(v)).join(' · ')),
            h('td', { class: 'mlo-eval-text' }, formatText(e.expected)),
            h('td', { class: 'mlo-eval-text', 'data-side': 'a' }, formatText(e.output_a)),
            h('td', { class: 'mlo-eval-text', 'data-side': 'b' }, formatText(e.output_b)),
            ...names.map(n => {
              const s = e.scores[n];
              return h(
                'td',
                { class: deltaClass(s.delta), 'data-scorer': n, title: `${formatValue(s.a)} → ${formatValue(s.b)}` },
                signed(s.delta)
              );
            })
          )
        )
      )
    );
    this.node.replaceChildren(
      h('h1', { class: 'mlo-run-title' }, `${c.a.label} → ${c.b.label}`),
      h(
        'table',
        { class: 'mlo-table mlo-eval-sides' },
        h('thead', {}, h('tr', {}, ['', 'evaluation', 'data', 'rows', 'gate', 'cost'].map(t => h('th', {}, t)))),
        h('tbody', {}, side(c.a, 'A'), side(c.b, 'B'))
      ),
      h('section', { class: 'mlo-run-section', 'data-section': 'scorers' }, h('h2', {}, 'Scorers'), scorers),
      h(
        'section',
        { class: 'mlo-run-section', 'data-section': 'examples' },
        h(
          'h2',
          {},
          c.examples.length < c.total_examples
            ? `Examples (the ${c.examples.length} that changed most of ${c.total_examples})`
            : `Examples (${c.total_examples}, the largest changes first)`
        ),
        examples
      )
    );
  }

  private _cmp: IEvalComparison | null = null;
}

function formatText(value: unknown): string {
  if (value === null || value === undefined) {
    return '–';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A main-area tab holding an `EvalCompareView`, with a reload button. */
export function createEvalCompareWidget(a: string, b: string, label: string): MainAreaWidget<EvalCompareView> {
  const content = new EvalCompareView(a, b);
  const widget = new MainAreaWidget({ content });
  widget.id = `mlo-eval-${a}-${b}`;
  widget.addClass('mlo-eval-tab');
  widget.title.label = label;
  widget.title.caption = `evaluation ${b} against ${a}`;
  widget.title.icon = mloIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({ icon: refreshIcon, tooltip: 'Reload the comparison', onClick: () => void content.load() })
  );
  void content.load();
  return widget;
}
