/**
 * One LLM trace's page: its header (status, tokens, cost, run, cell) and the span tree with each span's input and
 * output. Free of JupyterLab: the trace tab (`traceview.ts`) and the standalone `mlo ui` app both host it.
 */
import { api, ISpan, ITrace } from './api';
import { formatDuration, formatTime, formatTokens, formatUsd, formatValue, h, traceStatusBadge } from './dom';

/** Spans this deep and shallower start expanded; deeper ones start folded. */
const OPEN_DEPTH = 1;

export class TracePage {
  constructor(
    readonly node: HTMLElement,
    readonly traceId: string,
    private readonly _openRun: (runId: string, label: string) => void
  ) {
    node.classList.add('mlo-trace-view');
    this.node.dataset.traceId = traceId;
    this.node.tabIndex = -1;
  }

  /** The trace as last loaded (null before the first answer). */
  get trace(): ITrace | null {
    return this._trace;
  }

  async load(): Promise<ITrace | null> {
    this.node.classList.add('mlo-busy');
    try {
      this._trace = await api.trace(this.traceId);
      this._render(this._trace);
    } catch (error) {
      this.node.replaceChildren(
        h('div', { class: 'mlo-status-line', 'data-kind': 'error' }, (error as Error).message)
      );
    } finally {
      this.node.classList.remove('mlo-busy');
    }
    return this._trace;
  }

  private _render(trace: ITrace): void {
    const header: [string, Node | string][] = [
      ['status', traceStatusBadge(trace.status)],
      ['id', h('code', {}, trace.trace_id)],
      ['start', formatTime(trace.start_time)],
      ['duration', trace.status === 'running' ? 'running' : formatDuration(trace.duration_s)],
      ['spans', String(trace.span_count)],
      ['tokens', formatTokens(trace.usage) || '–'],
      ['cost', formatUsd(trace.cost_usd)]
    ];
    if (trace.run_id) {
      const runId = trace.run_id;
      header.push([
        'run',
        h(
          'button',
          {
            class: 'mlo-link mlo-trace-run',
            'data-run-id': runId,
            title: `open run ${runId}`,
            onclick: () => this._openRun(runId, runId.slice(0, 10))
          },
          runId.slice(0, 10)
        )
      ]);
    }
    if (trace.cell !== null || trace.notebook) {
      header.push([
        'cell',
        [trace.cell !== null ? `In [${trace.cell}]` : null, trace.notebook].filter(Boolean).join(' in ')
      ]);
    }
    if (trace.replayed) {
      header.push(['replayed', 'answered from the record, no endpoint contacted']);
    }
    const t0 = spanStart(trace);
    const total = Math.max(spanEnd(trace) - t0, 1);
    this.node.replaceChildren(
      h('h1', { class: 'mlo-run-title' }, trace.name),
      h(
        'table',
        { class: 'mlo-table mlo-trace-header' },
        h(
          'tbody',
          {},
          header.map(([key, value]) =>
            h('tr', { 'data-field': key }, h('th', {}, key), h('td', {}, value))
          )
        )
      ),
      ...(trace.error ? [h('pre', { class: 'mlo-cell-error mlo-trace-error' }, trace.error)] : []),
      h(
        'section',
        { class: 'mlo-run-section', 'data-section': 'spans' },
        h('h2', {}, 'Spans'),
        trace.spans.length
          ? h(
              'div',
              { class: 'mlo-spans' },
              trace.spans.map(s => renderSpan(s, 0, t0, total))
            )
          : h('p', { class: 'mlo-empty' }, 'No spans were recorded (the trace may still be running).')
      )
    );
  }

  private _trace: ITrace | null = null;
}

function spanStart(trace: ITrace): number {
  let first = Infinity;
  walk(trace.spans, s => (first = Math.min(first, s.start_time)));
  return isFinite(first) ? first : 0;
}

function spanEnd(trace: ITrace): number {
  let last = 0;
  walk(trace.spans, s => (last = Math.max(last, s.end_time ?? s.start_time)));
  return last;
}

function walk(spans: ISpan[], visit: (s: ISpan) => void): void {
  for (const s of spans) {
    visit(s);
    walk(s.children, visit);
  }
}

function renderSpan(s: ISpan, depth: number, t0: number, total: number): HTMLElement {
  const left = ((s.start_time - t0) / total) * 100;
  const width = Math.max((((s.end_time ?? s.start_time) - s.start_time) / total) * 100, 0.5);
  const tokens = formatTokens(s.usage);
  const summary = h(
    'summary',
    { class: 'mlo-span-summary' },
    traceStatusBadge(s.status),
    h('span', { class: 'mlo-span-name', title: s.name }, s.name),
    h('span', { class: 'mlo-span-kind', 'data-kind': s.kind }, s.kind),
    s.model ? h('code', { class: 'mlo-span-model' }, s.model) : null,
    s.prompt ? h('code', { class: 'mlo-span-prompt', title: 'prompt version' }, s.prompt) : null,
    h(
      'span',
      { class: 'mlo-span-track', title: `${formatDuration(s.duration_s)} from ${(s.start_time - t0) / 1000} ms` },
      h('span', {
        class: 'mlo-span-bar',
        'data-kind': s.kind,
        style: `left:${Math.min(left, 99.5).toFixed(2)}%;width:${Math.min(width, 100 - left).toFixed(2)}%`
      })
    ),
    h('span', { class: 'mlo-span-duration' }, s.end_time === null ? 'open' : formatDuration(s.duration_s)),
    tokens ? h('span', { class: 'mlo-span-tokens' }, tokens) : null,
    s.kind === 'llm' || s.kind === 'embedding'
      ? h('span', { class: 'mlo-span-cost' }, formatUsd(s.cost_usd))
      : null
  );
  const body: (HTMLElement | null)[] = [];
  if (s.error) {
    body.push(h('pre', { class: 'mlo-cell-error mlo-span-error' }, s.error));
  }
  if (s.content === 'omitted') {
    body.push(h('p', { class: 'mlo-empty' }, 'Input and output omitted: the trace is too large to show whole.'));
  }
  if (s.content_error) {
    body.push(h('p', { class: 'mlo-error' }, `cannot read what the span recorded: ${s.content_error}`));
  }
  const llm = s.kind === 'llm' || s.kind === 'embedding';
  for (const [label, value, key] of [
    [llm ? 'request' : 'inputs', s.input, 'input'],
    [llm ? 'answer' : 'outputs', s.output, 'output']
  ] as [string, string | null, string][]) {
    if (value !== null) {
      body.push(
        h(
          'div',
          { class: 'mlo-span-io', 'data-io': key },
          h('div', { class: 'mlo-span-label' }, label),
          h('pre', { class: 'mlo-cell-source' }, value)
        )
      );
    }
  }
  const attrs = Object.entries(s.attributes ?? {});
  if (attrs.length) {
    body.push(
      h(
        'details',
        { class: 'mlo-span-attributes' },
        h('summary', {}, `attributes (${attrs.length})`),
        h(
          'table',
          { class: 'mlo-table' },
          h(
            'tbody',
            {},
            attrs
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([key, value]) =>
                h('tr', { 'data-key': key }, h('th', {}, key), h('td', {}, formatValue(value)))
              )
          )
        )
      )
    );
  }
  const children = s.children.map(c => renderSpan(c, depth + 1, t0, total));
  return h(
    'details',
    {
      class: 'mlo-span',
      'data-span-id': s.span_id,
      'data-kind': s.kind,
      'data-status': s.status,
      open: depth < OPEN_DEPTH
    },
    summary,
    h('div', { class: 'mlo-span-body' }, body, children)
  );
}

