/**
 * Metric-history line charts on uPlot (≈22 kB gzipped; draws 100k points in tens of milliseconds): hover read-out,
 * drag to zoom (double-click resets), smoothing, log scale, and step / wall-time / relative-time axes. Colours come
 * from JupyterLab's CSS variables (light, dark, high contrast) and are redrawn when the theme changes; a run's colour
 * is a hash of its id, so it is the same everywhere and stays distinct beyond ten runs.
 */
import uPlot from 'uplot';

import { formatDuration, formatValue, h } from './dom';

/** What the x axis measures: the logged step, the wall-clock time, or seconds since the run started. */
export type XAxis = 'step' | 'wall' | 'relative';

export interface IChartOptions {
  x: XAxis;
  /** Exponential moving average weight in [0, 0.99] (0: off), bias-corrected as TensorBoard's. */
  smoothing: number;
  log: boolean;
}

export const DEFAULT_OPTIONS: IChartOptions = { x: 'step', smoothing: 0, log: false };

/** One metric's points as the API sends them (`time` in seconds since the epoch; null values are gaps). */
export interface ISeriesData {
  step: number[];
  value: (number | null)[];
  time: number[];
}

/** One line of a chart: a run's history of one metric. */
export interface ILine {
  label: string;
  color: string;
  data: ISeriesData;
  /** Seconds since the epoch that the relative-time axis counts from (the run's start). */
  start: number;
}

/** A stable colour for a run (or anything with an id): hue from a hash of the id, spread by the golden angle. */
export function colorFor(id: string): string {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) {
    hash = Math.imul(hash ^ id.charCodeAt(i), 16777619) >>> 0;
  }
  const hue = Math.round((hash % 360) * 137.508) % 360;
  const light = 40 + ((hash >>> 9) % 3) * 8; // three lightness bands keep close hues apart
  return `hsl(${hue}, 70%, ${isDark() ? light + 18 : light}%)`;
}

export function isDark(): boolean {
  return document.body.dataset.jpThemeLight === 'false';
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** Bias-corrected exponential moving average; gaps stay gaps. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values;
  }
  let last = 0;
  let n = 0;
  return values.map(v => {
    if (v === null || !isFinite(v)) {
      return null;
    }
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}

/** The x values of a line for an axis. */
function xValues(line: ILine, axis: XAxis): number[] {
  if (axis === 'step') {
    return line.data.step;
  }
  if (axis === 'wall') {
    return line.data.time;
  }
  return line.data.time.map(t => t - line.start);
}

/** uPlot's columns: one shared, sorted x column and a y column per line (raw, then smoothed when smoothing). */
export function alignedData(lines: ILine[], options: IChartOptions): uPlot.AlignedData {
  const tables: uPlot.AlignedData[] = lines.map(line => {
    const xs = xValues(line, options.x);
    const order = xs.map((_, i) => i);
    if (xs.some((x, i) => i > 0 && x < xs[i - 1])) {
      order.sort((a, b) => xs[a] - xs[b]);
    }
    const x = order.map(i => xs[i]);
    let y = order.map(i => line.data.value[i]);
    if (options.log) {
      y = y.map(v => (v !== null && v > 0 ? v : null)); // log scales have no place for 0 or less
    }
    const columns: (number | null)[][] = [y];
    if (options.smoothing > 0) {
      columns.push(smooth(y, options.smoothing));
    }
    return [x, ...columns] as uPlot.AlignedData;
  });
  return tables.length === 1 ? tables[0] : uPlot.join(tables);
}

function formatX(axis: XAxis, value: number | null): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (axis === 'step') {
    return `step ${value}`;
  }
  if (axis === 'relative') {
    return formatDuration(value);
  }
  return new Date(value * 1000).toLocaleString();
}

/**
 * One chart: a metric's lines (one per run) in a titled card. `update` swaps in longer data without losing the
 * user's zoom; `setOptions` redraws with another axis, smoothing or scale.
 */
export class LineChart {
  readonly node: HTMLElement;

  constructor(
    readonly title: string,
    private _lines: ILine[],
    private _options: IChartOptions
  ) {
    this.node = h(
      'figure',
      { class: 'mlo-chart', 'data-metric': title },
      h('figcaption', { class: 'mlo-chart-title', title }, title)
    );
    this._plotHost = h('div', { class: 'mlo-chart-plot' });
    this.node.appendChild(this._plotHost);
    this._resize = new ResizeObserver(() => this._fit());
    this._resize.observe(this.node);
    this._build();
  }

  get lines(): ILine[] {
    return this._lines;
  }

  /** New data for the lines (same lines, more points): redrawn, keeping a zoom the user made. */
  update(lines: ILine[]): void {
    this._lines = lines;
    if (!this._plot || lines.length !== this._built) {
      this._build();
      return;
    }
    this._plot.setData(alignedData(lines, this._options), !this._zoomed);
    this._mark();
  }

  setOptions(options: IChartOptions): void {
    this._options = options;
    this._zoomed = false;
    this._build();
  }

  /** Drawn again (theme colours changed). */
  redraw(): void {
    this._build();
  }

  dispose(): void {
    this._resize.disconnect();
    this._plot?.destroy();
    this._plot = null;
  }

  private _width(): number {
    return Math.max(200, Math.floor(this.node.clientWidth || 360) - 2);
  }

  private _fit(): void {
    if (this._plot) {
      const width = this._width();
      if (Math.abs(width - this._plot.width) > 1) {
        this._plot.setSize({ width, height: HEIGHT });
      }
    }
  }

  private _build(): void {
    this._plot?.destroy();
    const options = this._options;
    const text = cssVar('--jp-ui-font-color1', '#333');
    const muted = cssVar('--jp-ui-font-color2', '#777');
    const grid = cssVar('--jp-border-color2', '#ddd');
    const font = `11px ${cssVar('--jp-ui-font-family', 'sans-serif')}`;
    const series: uPlot.Series[] = [
      { label: options.x === 'step' ? 'step' : 'time', value: (_u, v) => formatX(options.x, v) }
    ];
    for (const line of this._lines) {
      const value = (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : formatValue(v));
      if (options.smoothing > 0) {
        series.push({ label: `${line.label} (raw)`, stroke: fade(line.color), width: 1, value, spanGaps: true });
        series.push({ label: line.label, stroke: line.color, width: 2, value, spanGaps: true });
      } else {
        series.push({ label: line.label, stroke: line.color, width: 1.5, value, spanGaps: true });
      }
    }
    const axis = (values?: uPlot.Axis['values']): uPlot.Axis => ({
      stroke: muted,
      font,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      ...(values ? { values } : {})
    });
    const xAxis =
      options.x === 'relative'
        ? axis((_u, ticks) => ticks.map(t => formatDuration(t)))
        : options.x === 'step'
          ? axis((_u, ticks) => ticks.map(t => (Math.abs(t) >= 1e5 ? t.toExponential(1) : String(t))))
          : axis();
    const plotOptions: uPlot.Options = {
      width: this._width(),
      height: HEIGHT,
      series,
      scales: {
        x: { time: options.x === 'wall' },
        y: options.log ? { distr: 3, log: 10 } : {}
      },
      axes: [xAxis, { ...axis((_u, ticks) => ticks.map(t => formatValue(t))), size: 56 }],
      cursor: { drag: { x: true, y: false }, focus: { prox: 24 } },
      legend: { live: true },
      hooks: {
        setSelect: [u => void (u.select.width > 0 && (this._zoomed = true))]
      }
    };
    this._plot = new uPlot(plotOptions, alignedData(this._lines, options), this._plotHost);
    this._built = this._lines.length;
    this._plot.over.addEventListener('dblclick', () => (this._zoomed = false));
    this._plot.root.style.color = text;
    this._mark();
  }

  /** What the browser tests read: the points drawn and the last step. */
  private _mark(): void {
    const points = this._lines.reduce((n, l) => n + l.data.step.length, 0);
    const last = Math.max(...this._lines.map(l => (l.data.step.length ? l.data.step[l.data.step.length - 1] : -1)));
    this.node.dataset.points = String(points);
    this.node.dataset.lastStep = String(last);
    this.node.dataset.x = this._options.x;
    this.node.dataset.log = String(this._options.log);
    this.node.dataset.smoothing = String(this._options.smoothing);
  }

  private _plot: uPlot | null = null;
  private _plotHost: HTMLElement;
  private _resize: ResizeObserver;
  private _zoomed = false;
  private _built = 0;
}

const HEIGHT = 220;

function fade(color: string): string {
  return color.replace(/^hsl\((.*)\)$/, 'hsla($1, 0.3)');
}

/** The chart controls: x axis, smoothing and log scale; `onChange` gets the new options. */
export function chartControls(options: IChartOptions, onChange: (options: IChartOptions) => void): HTMLElement {
  const current = { ...options };
  const axis = h(
    'select',
    {
      class: 'mlo-chart-x',
      title: 'x axis',
      onchange: (e: Event) => {
        current.x = (e.target as HTMLSelectElement).value as XAxis;
        onChange({ ...current });
      }
    },
    h('option', { value: 'step', selected: options.x === 'step' }, 'step'),
    h('option', { value: 'wall', selected: options.x === 'wall' }, 'wall time'),
    h('option', { value: 'relative', selected: options.x === 'relative' }, 'relative time')
  );
  const shown = h('output', { class: 'mlo-chart-smoothing-value' }, options.smoothing.toFixed(2));
  const slider = h('input', {
    class: 'mlo-chart-smoothing',
    type: 'range',
    min: 0,
    max: 0.99,
    step: 0.01,
    value: options.smoothing,
    title: 'smoothing (exponential moving average)',
    oninput: (e: Event) => {
      current.smoothing = Number((e.target as HTMLInputElement).value);
      shown.textContent = current.smoothing.toFixed(2);
      onChange({ ...current });
    }
  });
  const log = h('input', {
    class: 'mlo-chart-log',
    type: 'checkbox',
    checked: options.log,
    onchange: (e: Event) => {
      current.log = (e.target as HTMLInputElement).checked;
      onChange({ ...current });
    }
  });
  return h(
    'div',
    { class: 'mlo-chart-controls' },
    h('label', {}, 'x ', axis),
    h('label', {}, 'smoothing ', slider, shown),
    h('label', {}, log, ' log scale'),
    h('span', { class: 'mlo-chart-help' }, 'drag to zoom · double-click to reset')
  );
}

/** Calls `redraw` whenever JupyterLab switches theme (light, dark, high contrast); returns the disconnector. */
export function onThemeChange(redraw: () => void): () => void {
  const observer = new MutationObserver(() => redraw());
  observer.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name'] });
  return () => observer.disconnect();
}
