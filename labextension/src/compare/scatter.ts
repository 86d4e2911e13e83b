/**
 * A metric against a param, a dot per run, coloured by group: uPlot draws the points (tens of thousands stay
 * fast), the hover read-out names the nearest run. A categorical param is spread over its categories with a
 * small fixed jitter so runs of one category do not hide each other.
 */
import uPlot from 'uplot';

import { formatValue, h } from '../dom';

export interface IScatterPoint {
  id: string;
  label: string;
  x: number | string | null;
  y: number;
  group: string;
}

export interface IScatterData {
  x: string;
  y: string;
  points: IScatterPoint[];
  /** Category names when the param is not numeric (in axis order). */
  categories?: string[];
  log?: boolean;
}

export function jitter(id: string): number {
  let hash = 0;
  for (let i = 0; i < id.length; i++) {
    hash = (Math.imul(hash, 31) + id.charCodeAt(i)) >>> 0;
  }
  return ((hash % 1000) / 1000 - 0.5) * 0.4;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

export class ScatterChart {
  readonly node: HTMLElement;

  constructor(
    private _data: IScatterData,
    private _colors: (group: string) => string
  ) {
    this._tip = h('div', { class: 'mlo-scatter-tip', hidden: true });
    this._host = h('div', { class: 'mlo-chart-plot' });
    this.node = h(
      'figure',
      { class: 'mlo-chart mlo-scatter', 'data-points': String(_data.points.length) },
      h('figcaption', { class: 'mlo-chart-title' }, `${_data.y} vs ${_data.x}`),
      this._host,
      this._tip
    );
    this._resize = new ResizeObserver(() => this._fit());
    this._resize.observe(this.node);
    this._build();
  }

  dispose(): void {
    this._resize.disconnect();
    this._plot?.destroy();
  }

  redraw(): void {
    this._build();
  }

  private _xOf(p: IScatterPoint): number | null {
    const cats = this._data.categories;
    if (cats) {
      const i = cats.indexOf(p.x === null ? '(missing)' : String(p.x));
      return i < 0 ? null : i + jitter(p.id);
    }
    return typeof p.x === 'number' && isFinite(p.x) && (!this._data.log || p.x > 0) ? p.x : null;
  }

  private _width(): number {
    return Math.max(240, Math.floor(this.node.clientWidth || 480) - 2);
  }

  private _fit(): void {
    if (this._plot && Math.abs(this._width() - this._plot.width) > 1) {
      this._plot.setSize({ width: this._width(), height: 300 });
    }
  }

  private _build(): void {
    this._plot?.destroy();
    const pts = this._data.points
      .map(p => ({ p, x: this._xOf(p) }))
      .filter((q): q is { p: IScatterPoint; x: number } => q.x !== null && isFinite(q.p.y))
      .sort((a, b) => a.x - b.x);
    this._shown = pts;
    const groups = Array.from(new Set(pts.map(q => q.p.group))).sort();
    const xs = pts.map(q => q.x);
    const columns = groups.map(g => pts.map(q => (q.p.group === g ? q.p.y : null)));
    const muted = cssVar('--jp-ui-font-color2', '#777');
    const grid = cssVar('--jp-border-color2', '#ddd');
    const font = `11px ${cssVar('--jp-ui-font-family', 'sans-serif')}`;
    const cats = this._data.categories;
    const axis: uPlot.Axis = { stroke: muted, font, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const series: uPlot.Series[] = [{ label: this._data.x }];
    for (const g of groups) {
      const color = this._colors(g);
      series.push({
        label: g || this._data.y,
        stroke: color,
        fill: color,
        paths: () => null,
        points: { show: true, size: 6, stroke: color, fill: color },
        value: (_u, v) => (v === null || v === undefined ? '–' : formatValue(v))
      });
    }
    const opts: uPlot.Options = {
      width: this._width(),
      height: 300,
      series,
      scales: {
        x: cats ? { time: false, range: [-0.6, cats.length - 0.4] } : this._data.log ? { time: false, distr: 3, log: 10 } : { time: false },
        y: {}
      },
      axes: [
        cats
          ? { ...axis, splits: () => cats.map((_c, i) => i), values: () => cats.map(c => (c.length > 14 ? c.slice(0, 13) + '…' : c)) }
          : { ...axis, values: (_u, t) => t.map(v => formatValue(v)) },
        { ...axis, size: 56, values: (_u, t) => t.map(v => formatValue(v)) }
      ],
      legend: { show: groups.length > 1 },
      cursor: { drag: { x: true, y: true, uni: 20 }, points: { show: false } },
      hooks: { setCursor: [u => this._hover(u)] }
    };
    this._plot = new uPlot(opts, [xs, ...columns] as uPlot.AlignedData, this._host);
    this._plot.root.style.color = cssVar('--jp-ui-font-color1', '#333');
  }

  /** The run nearest the cursor (in pixels), named in a read-out beside it. */
  private _hover(u: uPlot): void {
    const { left, top } = u.cursor;
    if (left === undefined || top === undefined || left < 0 || !this._shown.length) {
      this._tip.hidden = true;
      return;
    }
    let best = -1;
    let dist = 12 * 12;
    for (let i = 0; i < this._shown.length; i++) {
      const q = this._shown[i];
      const dx = u.valToPos(q.x, 'x') - left;
      const dy = u.valToPos(q.p.y, 'y') - top;
      const d = dx * dx + dy * dy;
      if (d < dist) {
        dist = d;
        best = i;
      }
    }
    if (best < 0) {
      this._tip.hidden = true;
      return;
    }
    const q = this._shown[best].p;
    this._tip.hidden = false;
    this._tip.dataset.id = q.id;
    this._tip.textContent = `${q.label} · ${this._data.x} = ${q.x === null ? '(missing)' : formatValue(q.x)} · ${this._data.y} = ${formatValue(q.y)}`;
    this._tip.style.left = `${u.over.offsetLeft + left + 10}px`;
    this._tip.style.top = `${u.over.offsetTop + top + 10}px`;
  }

  private _plot: uPlot | null = null;
  private _host: HTMLElement;
  private _tip: HTMLElement;
  private _resize: ResizeObserver;
  private _shown: { p: IScatterPoint; x: number }[] = [];
}
