/**
 * Parallel coordinates: an axis per chosen param (in the chosen order, numeric ones linear or log) and one for
 * the metric, a line per run coloured by the metric, the best run drawn last and thicker. A run that lacks a
 * value passes through the axis's own "missing" tick, so no run is dropped. Dragging along an axis brushes a
 * range (a click clears it); the runs outside every brush fade and `onBrush` receives the brushes as data
 * ranges, category lists and "missing" flags.
 */
import { formatValue, h } from '../dom';
import { niceTicks, ramp, s } from './svg';

export interface IAxis {
  key: string;
  label: string;
  kind: 'num' | 'cat';
  categories?: string[];
}

export interface IParallelData {
  metric: string;
  mode: 'min' | 'max';
  axes: IAxis[];
  rows: { id: string; label: string; values: Record<string, number | string | null> }[];
  best: string | null;
}

export interface IParallelState {
  axes: string[];
  log: string[];
}

export interface IBrushSpec {
  lo?: number;
  hi?: number;
  values?: (string | number)[];
  missing?: boolean;
}

const HEIGHT = 300;
const TOP = 24;
const BOTTOM = 62; // room for the missing tick and the axis names
const MISSING_GAP = 22;

interface IScale {
  axis: IAxis;
  y: (v: number | string | null) => number;
  invert: (y0: number, y1: number) => IBrushSpec;
  ticks: { y: number; text: string }[];
}

function scaleFor(axis: IAxis, rows: IParallelData['rows'], log: boolean): IScale {
  const bottom = HEIGHT - BOTTOM;
  const missingY = bottom + MISSING_GAP;
  const span = bottom - TOP;
  const hasMissing = rows.some(r => r.values[axis.key] === null || r.values[axis.key] === undefined);
  const tail = hasMissing ? [{ y: missingY, text: '(missing)' }] : [];
  if (axis.kind === 'cat') {
    const cats = axis.categories || [];
    const pos = (i: number) => (cats.length > 1 ? bottom - (i / (cats.length - 1)) * span : TOP + span / 2);
    return {
      axis,
      y: v => (v === null || v === undefined ? missingY : pos(Math.max(0, cats.indexOf(String(v))))),
      invert: (y0, y1) => ({
        values: cats.filter((_c, i) => pos(i) >= y0 && pos(i) <= y1),
        missing: hasMissing && missingY >= y0 && missingY <= y1
      }),
      ticks: [...cats.map((c, i) => ({ y: pos(i), text: c })), ...tail]
    };
  }
  const nums = rows.map(r => r.values[axis.key]).filter((v): v is number => typeof v === 'number' && isFinite(v) && (!log || v > 0));
  const f = (v: number) => (log ? Math.log10(v) : v);
  const finv = (t: number) => (log ? Math.pow(10, t) : t);
  let lo = nums.length ? f(Math.min(...nums)) : 0;
  let hi = nums.length ? f(Math.max(...nums)) : 1;
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const y = (v: number | string | null) =>
    typeof v === 'number' && isFinite(v) && (!log || v > 0) ? bottom - ((f(v) - lo) / (hi - lo)) * span : missingY;
  const val = (py: number) => finv(lo + ((bottom - py) / span) * (hi - lo));
  const ticks = log
    ? niceTicks(lo, hi, 3).map(t => ({ y: bottom - ((t - lo) / (hi - lo)) * span, text: formatValue(Math.pow(10, t)) }))
    : niceTicks(lo, hi, 4).map(t => ({ y: bottom - ((t - lo) / (hi - lo)) * span, text: formatValue(t) }));
  return {
    axis,
    y,
    invert: (y0, y1) => {
      const spec: IBrushSpec = {};
      if (y0 <= bottom + 2) {
        spec.lo = val(Math.min(bottom, y1));
        spec.hi = val(Math.max(TOP, y0));
      }
      if (hasMissing && missingY >= y0 && missingY <= y1) {
        spec.missing = true;
      }
      return spec;
    },
    ticks: [...ticks.filter(t => t.y >= TOP - 1 && t.y <= bottom + 1), ...tail]
  };
}

export class ParallelChart {
  readonly node: HTMLElement;
  brushes: Record<string, [number, number]> = {};

  constructor(
    private _data: IParallelData,
    private _state: IParallelState,
    private _onBrush: (brush: Record<string, IBrushSpec>) => void,
    private _onState: (state: IParallelState) => void
  ) {
    this._plot = h('div', { class: 'mlo-parallel-plot' });
    this.node = h('figure', { class: 'mlo-chart mlo-parallel', 'data-metric': _data.metric }, this._chooser(), this._plot);
    this._resize = new ResizeObserver(() => this._draw());
    this._resize.observe(this.node);
    this._draw();
  }

  dispose(): void {
    this._resize.disconnect();
  }

  redraw(): void {
    this._draw();
  }

  /** The axes in order: the chosen params, then the metric, always last. */
  private _axes(): IAxis[] {
    const byKey = new Map(this._data.axes.map(a => [a.key, a]));
    const chosen = this._state.axes.filter(k => byKey.has(k) && k !== this._data.metric).map(k => byKey.get(k)!);
    const metric = byKey.get(this._data.metric);
    return metric ? [...chosen, metric] : chosen;
  }

  private _chooser(): HTMLElement {
    const list = h('div', { class: 'mlo-parallel-axes' });
    const order = [...this._state.axes.filter(k => this._data.axes.some(a => a.key === k))];
    for (const a of this._data.axes) {
      if (!order.includes(a.key) && a.key !== this._data.metric) {
        order.push(a.key);
      }
    }
    const emit = () => {
      this._onState({ ...this._state });
      this.brushes = {};
      this._draw();
      this._emitBrush();
      this.node.replaceChild(this._chooser(), this.node.firstChild!);
    };
    for (const key of order) {
      const axis = this._data.axes.find(a => a.key === key)!;
      if (key === this._data.metric) {
        continue;
      }
      const on = this._state.axes.includes(key);
      const move = (d: number) => () => {
        const axes = this._state.axes.filter(k => k !== key);
        const at = Math.max(0, Math.min(axes.length, this._state.axes.indexOf(key) + d));
        axes.splice(at, 0, key);
        this._state.axes = axes;
        emit();
      };
      list.appendChild(
        h(
          'span',
          { class: 'mlo-parallel-axis', 'data-axis': key },
          h('input', {
            type: 'checkbox',
            checked: on,
            title: 'show this axis',
            onchange: () => {
              this._state.axes = on ? this._state.axes.filter(k => k !== key) : [...this._state.axes, key];
              emit();
            }
          }),
          axis.label,
          on ? h('button', { class: 'mlo-move-left', title: 'move left', onclick: move(-1) }, '◀') : null,
          on ? h('button', { class: 'mlo-move-right', title: 'move right', onclick: move(1) }, '▶') : null,
          axis.kind === 'num'
            ? h(
                'label',
                { class: 'mlo-parallel-log', title: 'log scale' },
                h('input', {
                  type: 'checkbox',
                  checked: this._state.log.includes(key),
                  onchange: () => {
                    this._state.log = this._state.log.includes(key) ? this._state.log.filter(k => k !== key) : [...this._state.log, key];
                    emit();
                  }
                }),
                'log'
              )
            : null
        )
      );
    }
    return h('div', { class: 'mlo-parallel-controls' }, h('span', { class: 'mlo-m' }, 'axes: '), list, h('span', { class: 'mlo-chart-help' }, 'drag along an axis to brush · click it to clear'));
  }

  private _draw(): void {
    const axes = this._axes();
    const width = Math.max(320, Math.floor(this.node.clientWidth || 640) - 4);
    const left = 60;
    const gap = axes.length > 1 ? (width - left - 70) / (axes.length - 1) : 0;
    const scales = axes.map(a => scaleFor(a, this._data.rows, this._state.log.includes(a.key)));
    this._scales = scales;
    const metricScale = scales[scales.length - 1];
    const mvals = this._data.rows.map(r => r.values[this._data.metric]).filter((v): v is number => typeof v === 'number');
    const mlo = Math.min(...mvals);
    const mhi = Math.max(...mvals);
    const svg = s('svg', { width, height: HEIGHT, class: 'mlo-parallel-svg' });
    const lines = s('g', { class: 'mlo-parallel-lines' });
    const rows = [...this._data.rows].sort((a, b) => (a.id === this._data.best ? 1 : b.id === this._data.best ? -1 : 0));
    this._lines = [];
    for (const row of rows) {
      const pts = scales.map((sc, i) => `${left + i * gap},${sc.y(row.values[sc.axis.key] ?? null)}`).join(' ');
      const m = row.values[this._data.metric];
      const t = typeof m === 'number' && mhi > mlo ? (m - mlo) / (mhi - mlo) : 0.5;
      const best = row.id === this._data.best;
      const line = s('polyline', {
        points: pts,
        class: best ? 'mlo-pline mlo-pline-best' : 'mlo-pline',
        stroke: ramp(this._data.mode === 'min' ? 1 - t : t),
        'data-id': row.id
      });
      line.appendChild(s('title', {}, `${row.label}: ${this._data.metric} = ${formatValue(m)}`));
      lines.appendChild(line);
      this._lines.push({ row, node: line });
    }
    svg.appendChild(lines);
    scales.forEach((sc, i) => {
      const x = left + i * gap;
      const g = s('g', { class: 'mlo-paxis', 'data-axis': sc.axis.key, transform: `translate(${x},0)` });
      g.appendChild(s('line', { x1: 0, x2: 0, y1: TOP, y2: HEIGHT - BOTTOM, class: 'mlo-paxis-line' }));
      for (const t of sc.ticks) {
        g.appendChild(s('line', { x1: -3, x2: 3, y1: t.y, y2: t.y, class: 'mlo-paxis-line' }));
        const text = t.text.length > 12 ? t.text.slice(0, 11) + '…' : t.text;
        g.appendChild(s('text', { x: -6, y: t.y + 4, 'text-anchor': 'end', class: 'mlo-tick' }, text));
      }
      const name = sc.axis.label + (this._state.log.includes(sc.axis.key) ? ' (log)' : '');
      g.appendChild(s('text', { x: 0, y: HEIGHT - 8, 'text-anchor': 'middle', class: 'mlo-paxis-name' }, name));
      const b = this.brushes[sc.axis.key];
      const brush = s('rect', { x: -8, width: 16, y: b ? b[0] : 0, height: b ? b[1] - b[0] : 0, class: 'mlo-brush' });
      g.appendChild(brush);
      const hit = s('rect', { x: -12, width: 24, y: TOP - 8, height: HEIGHT - BOTTOM - TOP + MISSING_GAP + 16, class: 'mlo-brush-hit' });
      g.appendChild(hit);
      hit.addEventListener('pointerdown', (e: Event) => this._startBrush(e as PointerEvent, sc.axis.key, svg, brush));
      svg.appendChild(g);
    });
    void metricScale;
    this._plot.replaceChildren(svg);
    this._fade();
  }

  private _startBrush(e: PointerEvent, key: string, svg: SVGElement, rect: SVGElement): void {
    e.preventDefault();
    const top = svg.getBoundingClientRect().top;
    const y0 = e.clientY - top;
    let y1 = y0;
    const move = (ev: PointerEvent) => {
      y1 = ev.clientY - top;
      rect.setAttribute('y', String(Math.min(y0, y1)));
      rect.setAttribute('height', String(Math.abs(y1 - y0)));
    };
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      if (Math.abs(y1 - y0) < 3) {
        delete this.brushes[key];
        rect.setAttribute('height', '0');
      } else {
        this.brushes[key] = [Math.min(y0, y1), Math.max(y0, y1)];
      }
      this._fade();
      this._emitBrush();
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }

  private _fade(): void {
    const scales = new Map(this._scales.map(sc => [sc.axis.key, sc]));
    let kept = 0;
    for (const { row, node } of this._lines) {
      const inside = Object.entries(this.brushes).every(([key, [y0, y1]]) => {
        const sc = scales.get(key);
        if (!sc) {
          return true;
        }
        const y = sc.y(row.values[key] ?? null);
        return y >= y0 && y <= y1;
      });
      node.classList.toggle('mlo-pline-out', !inside);
      kept += inside ? 1 : 0;
    }
    this.node.dataset.brushed = String(kept);
  }

  private _emitBrush(): void {
    const scales = new Map(this._scales.map(sc => [sc.axis.key, sc]));
    const out: Record<string, IBrushSpec> = {};
    for (const [key, [y0, y1]] of Object.entries(this.brushes)) {
      const sc = scales.get(key);
      if (sc) {
        out[key] = sc.invert(y0, y1);
      }
    }
    this._onBrush(out);
  }

  private _plot: HTMLElement;
  private _resize: ResizeObserver;
  private _scales: IScale[] = [];
  private _lines: { row: IParallelData['rows'][number]; node: SVGElement }[] = [];
}
