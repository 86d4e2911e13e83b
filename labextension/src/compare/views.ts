/**
 * A comparison chart's data (the JSON of `mlo.tracking.compare_charts`, whether it came through the widget's
 * model or the REST API's `compare` endpoint) drawn into a host element: histories as uPlot line charts (a
 * group's mean ± spread as a line and a faded band) and single values as dot plots, the metric against a param,
 * parallel coordinates with brushing, parameter importance. The notebook widget and the `mlo ui` app both draw
 * through here, so they show the same charts.
 */
import { colorFor, IChartOptions, ILine, LineChart } from '../charts';
import { h } from '../dom';
import { dotPlot, IDot } from './dots';
import { IImportance, importanceChart } from './importance';
import { IBrushSpec, IParallelData, IParallelState, ParallelChart } from './parallel';
import { IScatterData, ScatterChart } from './scatter';

export interface IHistoryLine {
  id: string;
  label: string;
  color_key: string;
  role?: 'mean' | 'band';
  step: number[];
  value: (number | null)[];
  time: number[];
  start: number;
}

export interface IViewHooks {
  /** the history charts' axis, smoothing and scale */
  chartOptions: IChartOptions;
  /** parallel coordinates: the brushes changed (data ranges, category lists, "missing" flags) */
  onBrush?: (brush: Record<string, IBrushSpec>) => void;
  /** parallel coordinates: the chosen axes or log scales changed */
  onParallelState?: (state: IParallelState) => void;
}

/** What was drawn: what to dispose or redraw, and each history chart with its lines (for live appends). */
export interface IDrawn {
  disposables: { dispose(): void; redraw?(): void }[];
  histories: { metric: string; chart: LineChart; lines: ILine[]; ids: string[] }[];
}

function fade(color: string): string {
  return color.replace(/^hsl\((.*)\)$/, 'hsla($1, 0.35)');
}

export function drawPayload(payload: any, host: HTMLElement, hooks: IViewHooks): IDrawn {
  const drawn: IDrawn = { disposables: [], histories: [] };
  host.dataset.kind = payload.kind || '';
  if (payload.message) {
    host.appendChild(h('div', { class: 'mlo-m mlo-cw-message' }, payload.message));
  }
  if (payload.kind === 'histories') {
    const grid = h('div', { class: 'mlo-cw-grid' });
    for (const chart of payload.charts || []) {
      const source = chart.lines as IHistoryLine[];
      const lines: ILine[] = source.map(l => ({
        label: l.label,
        color: l.role === 'band' ? fade(colorFor(l.color_key)) : colorFor(l.color_key),
        data: { step: [...l.step], value: [...l.value], time: [...l.time] }, // appended to while live
        start: l.start
      }));
      const c = new LineChart(chart.metric, lines, hooks.chartOptions);
      if (payload.grouped) {
        c.node.dataset.grouped = 'true';
      }
      drawn.disposables.push(c);
      drawn.histories.push({ metric: chart.metric, chart: c, lines, ids: source.map(l => l.id) });
      grid.appendChild(c.node);
    }
    host.appendChild(grid);
    for (const v of payload.values || []) {
      const dots: IDot[] = v.dots.map((d: IDot & { color_key: string }) => ({ ...d, color: colorFor(d.color_key) }));
      host.appendChild(dotPlot(v.metric, dots, Math.min(720, host.clientWidth || 560)));
    }
    if (payload.more) {
      host.appendChild(h('div', { class: 'mlo-m' }, payload.more));
    }
  } else if (payload.kind === 'scatter' && payload.points) {
    const data = payload as IScatterData;
    const c = new ScatterChart(data, g => colorFor(g || data.y));
    drawn.disposables.push(c);
    host.appendChild(c.node);
  } else if (payload.kind === 'parallel' && payload.rows) {
    const data = payload as IParallelData & { state: IParallelState };
    const c = new ParallelChart(
      data,
      { axes: [...data.state.axes], log: [...data.state.log] },
      hooks.onBrush ?? (() => undefined),
      hooks.onParallelState ?? (() => undefined)
    );
    drawn.disposables.push(c);
    host.appendChild(c.node);
  } else if (payload.kind === 'importance' && payload.values) {
    host.appendChild(importanceChart(payload as IImportance));
  }
  return drawn;
}
