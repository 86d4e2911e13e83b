/**
 * The charts of one run's metric histories, kept live while the run trains: a short poll asks the API only for the
 * points after the last step drawn (`since_step`) and appends them; a metric that appears mid-run is fetched whole.
 */
import { api, IMetricHistory } from './api';
import { chartControls, colorFor, DEFAULT_OPTIONS, IChartOptions, ILine, LineChart, onThemeChange } from './charts';
import { h } from './dom';

/** How often a running run's charts ask for new points (ms). The run buffers points for up to 5 s itself. */
export const LIVE_POLL_MS = 2000;

export interface IRunChartsHosts {
  /** where the charts of the run's own metrics go */
  charts: HTMLElement;
  /** where `system.*` charts go (null: not drawn) */
  system: HTMLElement | null;
}

export class RunCharts {
  constructor(
    readonly runId: string,
    private readonly _label: string,
    private readonly _start: number,
    private readonly _hosts: IRunChartsHosts,
    private readonly _onLatest: (key: string, value: number | null) => void = () => undefined
  ) {
    this.controls = chartControls(this._options, options => this._setOptions(options));
    this._unwatchTheme = onThemeChange(() => this._charts.forEach(c => c.redraw()));
  }

  readonly controls: HTMLElement;

  /** Everything the run logged so far; resolves to the run's status. */
  async load(): Promise<string> {
    const answer = await api.metrics(this.runId);
    this._data.clear();
    for (const [key, history] of Object.entries(answer.metrics)) {
      this._data.set(key, copy(history));
    }
    this._draw();
    return answer.status;
  }

  /** The points logged since the last call; resolves to the run's status. */
  async poll(): Promise<string> {
    const lasts = [...this._data.values()].map(d => d.step[d.step.length - 1]);
    const since = lasts.length ? Math.min(...lasts) : undefined;
    const answer = await api.metrics(this.runId, since);
    for (const [key, history] of Object.entries(answer.metrics)) {
      const known = this._data.get(key);
      if (!known) {
        // a metric new to this chart: its earlier points may lie at or before `since`
        const whole = await api.metrics(this.runId);
        if (whole.metrics[key]) {
          this._data.set(key, copy(whole.metrics[key]));
        }
        continue;
      }
      const last = known.step[known.step.length - 1];
      for (let i = 0; i < history.step.length; i++) {
        if (history.step[i] > last) {
          known.step.push(history.step[i]);
          known.value.push(history.value[i]);
          known.time.push(history.time[i]);
        }
      }
    }
    this._draw();
    return answer.status;
  }

  /** Polls every `LIVE_POLL_MS` while `visible()` says so, until the run ends; `onEnd` is called once then. */
  live(visible: () => boolean, onEnd: () => void): void {
    this.stop();
    const tick = async () => {
      if (this._disposed) {
        return;
      }
      let status = 'running';
      if (visible()) {
        try {
          status = await this.poll();
        } catch {
          status = 'running'; // a failed poll is tried again at the next tick
        }
      }
      if (this._disposed) {
        return;
      }
      if (status === 'running') {
        this._timer = window.setTimeout(() => void tick(), LIVE_POLL_MS);
      } else {
        onEnd();
      }
    };
    this._timer = window.setTimeout(() => void tick(), LIVE_POLL_MS);
  }

  stop(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  dispose(): void {
    this._disposed = true;
    this.stop();
    this._unwatchTheme();
    this._charts.forEach(c => c.dispose());
    this._charts.clear();
  }

  /** The metrics with a chart (at least two points). */
  get charted(): string[] {
    return [...this._charts.keys()];
  }

  private _host(key: string): HTMLElement | null {
    return key.startsWith('system.') ? this._hosts.system : this._hosts.charts;
  }

  private _lines(key: string): ILine[] {
    return [{ label: this._label, color: colorFor(this.runId), data: this._data.get(key)!, start: this._start }];
  }

  private _draw(): void {
    let added = false;
    for (const [key, data] of this._data) {
      const value = data.value[data.value.length - 1];
      this._onLatest(key, value === undefined ? null : value);
      const chart = this._charts.get(key);
      if (chart) {
        chart.update(this._lines(key));
      } else if (data.step.length >= 2 && this._host(key)) {
        this._charts.set(key, new LineChart(key, this._lines(key), this._options));
        added = true;
      }
    }
    if (added) {
      for (const key of [...this._charts.keys()].sort()) {
        this._host(key)!.appendChild(this._charts.get(key)!.node);
      }
    }
    this.controls.classList.toggle('mlo-hidden', this._charts.size === 0); // no chart, nothing to control
    for (const host of [this._hosts.charts, this._hosts.system]) {
      if (host && !host.querySelector('.mlo-chart')) {
        host.replaceChildren(h('p', { class: 'mlo-empty' }, 'No metric with two or more points yet.'));
      } else if (host) {
        host.querySelector(':scope > .mlo-empty')?.remove();
      }
    }
  }

  private _setOptions(options: IChartOptions): void {
    this._options = options;
    this._charts.forEach(c => c.setOptions(options));
  }

  private _options: IChartOptions = { ...DEFAULT_OPTIONS };
  private _data = new Map<string, { step: number[]; value: (number | null)[]; time: number[] }>();
  private _charts = new Map<string, LineChart>();
  private _timer: number | null = null;
  private _disposed = false;
  private _unwatchTheme: () => void;
}

function copy(history: IMetricHistory) {
  return { step: [...history.step], value: [...history.value], time: [...history.time] };
}
