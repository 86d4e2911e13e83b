/**
 * The charts of `mlo.compare()` as an anywidget view: metric histories (uPlot line charts with hover, zoom,
 * smoothing, log scale and step / wall / relative time; single values as labelled dot plots), a metric against
 * a param, parallel coordinates with brushing, parameter importance and the param diff. Grouping by a param or
 * tag turns runs into their groups' mean ± spread. Python computes each tab's data (`payload`) when the tab,
 * metric, param or grouping (`tab`, `options`) changes; brushes go back through `brush`. Everything is bundled:
 * no network at run time.
 */
import { chartControls, DEFAULT_OPTIONS, IChartOptions, ILine, LineChart, onThemeChange } from '../charts';
import { h } from '../dom';
import { IBrushSpec, IParallelState } from './parallel';
import { drawPayload } from './views';

interface IModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  send(content: unknown): void;
  on(event: string, cb: (...args: any[]) => void): void;
  off(event: string, cb: (...args: any[]) => void): void;
}

/** How often the histories of a running run ask the kernel for their new points (ms). */
export const LIVE_POLL_MS = 1000;
/** A poll unanswered this long (a restarted kernel) is asked again. */
const LIVE_GIVE_UP_MS = 60_000;

/** What a poll answers: per run and metric, only the points after the last step the view holds. */
interface IAppend {
  kind: 'append';
  runs: Record<string, Record<string, { step: number[]; value: (number | null)[]; time: number[] }>>;
  live: string[];
  message?: string;
  /** a running run logged a metric the view does not show */
  redraw?: boolean;
}

/**
 * Inside JupyterLab the server's mlo API (the store, read by the server process) answers a poll even while the
 * kernel runs a cell, e.g. the very cell that trains the run: its base URL and token from the page's config.
 * Elsewhere (VS Code, no server extension) there is none and the kernel answers.
 */
function labApi(): { base: string; headers: Record<string, string> } | null {
  const node = document.getElementById('jupyter-config-data');
  if (!node) {
    return null;
  }
  try {
    const config = JSON.parse(node.textContent || '{}');
    const headers: Record<string, string> = config.token ? { Authorization: `token ${config.token}` } : {};
    return { base: String(config.baseUrl || '/').replace(/\/?$/, '/'), headers };
  } catch {
    return null;
  }
}

const TABS: [string, string][] = [
  ['histories', 'Metric histories'],
  ['scatter', 'Metric vs param'],
  ['parallel', 'Parallel coordinates'],
  ['importance', 'Param importance'],
  ['diff', 'Param diff']
];

function render({ model, el }: { model: IModel; el: HTMLElement }): () => void {
  const root = h('div', { class: 'mlo-cw' });
  el.appendChild(root);
  let chartOptions: IChartOptions = { ...DEFAULT_OPTIONS, ...(model.get('options').chart || {}) };
  let disposables: { dispose(): void; redraw?(): void }[] = [];
  // live histories: the drawn lines of each running run, by run id and metric, and the poll's timer
  let liveLines = new Map<string, Map<string, { chart: LineChart; line: ILine }>>();
  let liveTimer: number | null = null;
  let polling = false;
  let polledAt = 0;
  let rest = labApi(); // null once it fails: the kernel answers from then on
  let known = new Set<string>(); // the metrics the view shows, as lines or dots
  let redrawAsked = false;
  let kernelAsked: 'poll' | 'redraw' | null = null; // what the kernel's next answer is for

  const tabs = h('div', { class: 'mlo-cw-tabs', role: 'tablist' });
  const controls = h('div', { class: 'mlo-cw-controls' });
  const body = h('div', { class: 'mlo-cw-body' });
  root.append(tabs, controls, body);

  function setOption(name: string, value: unknown): void {
    model.set('options', { ...model.get('options'), [name]: value });
    model.save_changes();
  }

  function select(name: string, label: string, values: [string, string][], current: string | null): HTMLElement {
    return h(
      'label',
      { class: `mlo-cw-${name}` },
      `${label} `,
      h(
        'select',
        { onchange: (e: Event) => setOption(name, (e.target as HTMLSelectElement).value || null) },
        values.map(([v, text]) => h('option', { value: v, selected: v === (current ?? '') }, text))
      )
    );
  }

  function drawTabs(): void {
    const current = model.get('tab');
    tabs.replaceChildren(
      ...TABS.map(([key, label]) =>
        h(
          'button',
          {
            class: key === current ? 'mlo-cw-tab mlo-cw-tab-active' : 'mlo-cw-tab',
            role: 'tab',
            'data-tab': key,
            'aria-selected': String(key === current),
            onclick: () => {
              model.set('tab', key);
              model.save_changes();
            }
          },
          label
        )
      )
    );
  }

  function drawControls(): void {
    const tab = model.get('tab');
    const choices = model.get('choices') || {};
    const options = model.get('options') || {};
    const label = (c: string) => c.replace(/^(params|metrics|tags)\./, '');
    const parts: HTMLElement[] = [];
    if (tab !== 'diff' && tab !== 'histories') {
      parts.push(select('metric', 'metric', (choices.metrics || []).map((m: string) => [m, label(m)]), options.metric));
    }
    if (tab === 'scatter') {
      parts.push(select('param', 'against', (choices.params || []).map((m: string) => [m, label(m)]), options.param));
      parts.push(
        h(
          'label',
          { class: 'mlo-cw-logx' },
          h('input', { type: 'checkbox', checked: !!options.log_x, onchange: (e: Event) => setOption('log_x', (e.target as HTMLInputElement).checked) }),
          ' log x'
        )
      );
    }
    if (tab === 'histories' || tab === 'scatter') {
      const groups: [string, string][] = [['', 'none'], ...(choices.groups || []).map((g: string) => [g, label(g)] as [string, string])];
      parts.push(select('group_by', 'group by', groups, options.group_by));
    }
    if (tab === 'histories') {
      parts.push(
        chartControls(chartOptions, next => {
          chartOptions = next;
          for (const d of disposables) {
            if (d instanceof LineChart) {
              d.setOptions(next);
            }
          }
        })
      );
    }
    controls.replaceChildren(...parts);
  }

  function stopLive(): void {
    if (liveTimer !== null) {
      window.clearTimeout(liveTimer);
      liveTimer = null;
    }
    liveLines = new Map();
    polling = false;
    redrawAsked = false;
    kernelAsked = null;
    delete root.dataset.live;
  }

  /** Ask for the points after each running line's last step (one request in flight at a time). */
  function poll(): void {
    liveTimer = null;
    if (!liveLines.size) {
      return;
    }
    const waiting = polling && Date.now() - polledAt < LIVE_GIVE_UP_MS; // a kernel busy with a cell answers later
    if (waiting || !el.isConnected || document.visibilityState !== 'visible') {
      liveTimer = window.setTimeout(poll, LIVE_POLL_MS); // hidden: ask again later, nothing sent meanwhile
      return;
    }
    const since: Record<string, Record<string, number>> = {};
    for (const [runId, byMetric] of liveLines) {
      since[runId] = {};
      for (const [metric, { line }] of byMetric) {
        const steps = line.data.step;
        since[runId][metric] = steps.length ? steps[steps.length - 1] : -1;
      }
    }
    polling = true;
    polledAt = Date.now();
    if (!rest) {
      askKernel('poll', since);
      return;
    }
    void fromServer(rest, since)
      .catch(() => null)
      .then(answer => {
        if (!answer) {
          rest = null; // not this server's workspace, or no mlo API here: ask the kernel
          askKernel('poll', since);
          return;
        }
        onMessage(answer);
        if (answer.redraw && !redrawAsked) {
          redrawAsked = true; // the kernel reads the charts again when it is free
          askKernel('redraw', since);
        }
      });
  }

  function askKernel(why: 'poll' | 'redraw', since: Record<string, Record<string, number>>): void {
    kernelAsked = why;
    model.send({ type: 'poll', since });
  }

  /** The kernel's answer: drawn when it answers a poll (a redraw's answer is the new payload itself). */
  function onKernel(content: IAppend): void {
    const why = kernelAsked;
    kernelAsked = null;
    if (why === 'poll') {
      onMessage(content);
    }
  }

  /** The points after `since` from the server's API: `GET runs/<id>/metrics?since_step=`, per live run. */
  async function fromServer(
    api: { base: string; headers: Record<string, string> },
    since: Record<string, Record<string, number>>
  ): Promise<IAppend | null> {
    const answer: IAppend = { kind: 'append', runs: {}, live: [], redraw: false };
    for (const [runId, lasts] of Object.entries(since)) {
      const from = Math.min(...Object.values(lasts));
      const url = `${api.base}mlo/api/runs/${encodeURIComponent(runId)}/metrics?since_step=${from}`;
      const response = await fetch(url, { headers: api.headers, credentials: 'same-origin' });
      if (!response.ok) {
        return null;
      }
      const series = await response.json();
      if (series.status === 'running') {
        answer.live.push(runId);
      }
      for (const [key, points] of Object.entries(series.metrics || {})) {
        if (key in lasts) {
          (answer.runs[runId] ??= {})[key] = points as IAppend['runs'][string][string];
        } else if (!known.has(key)) {
          answer.redraw = true;
        }
      }
    }
    return answer;
  }

  function onMessage(content: IAppend): void {
    if (!content || content.kind !== 'append' || !polling) {
      return;
    }
    polling = false;
    const touched = new Set<LineChart>();
    for (const [runId, byMetric] of Object.entries(content.runs || {})) {
      for (const [metric, points] of Object.entries(byMetric)) {
        const drawn = liveLines.get(runId)?.get(metric);
        if (!drawn) {
          continue;
        }
        const data = drawn.line.data;
        const last = data.step.length ? data.step[data.step.length - 1] : -Infinity;
        points.step.forEach((step, i) => {
          if (step > last) {
            data.step.push(step);
            data.value.push(points.value[i]);
            data.time.push(points.time[i]);
          }
        });
        touched.add(drawn.chart);
      }
    }
    for (const chart of touched) {
      chart.update(chart.lines); // new data for the same lines: the plot's setData, a zoom kept
    }
    const live = new Set(content.live || []);
    for (const runId of [...liveLines.keys()]) {
      if (!live.has(runId)) {
        liveLines.delete(runId); // ended: its last points came in this answer
      }
    }
    if (liveLines.size) {
      liveTimer = window.setTimeout(poll, LIVE_POLL_MS);
    } else {
      stopLive();
    }
  }

  function clear(): void {
    stopLive();
    for (const d of disposables) {
      d.dispose();
    }
    disposables = [];
    body.replaceChildren();
  }

  function drawBody(): void {
    clear();
    const payload = model.get('payload') || {};
    if (payload.kind === 'diff') {
      body.dataset.kind = 'diff';
      if (payload.message) {
        body.appendChild(h('div', { class: 'mlo-m mlo-cw-message' }, payload.message));
      }
      const pane = h('div', { class: 'mlo-cw-diff' });
      pane.innerHTML = payload.html ?? ''; // HTML escaped by Python (mlo.report.compare.param_diff_html)
      body.appendChild(pane);
      return;
    }
    const drawn = drawPayload(payload, body, {
      chartOptions,
      onBrush: (brush: Record<string, IBrushSpec>) => {
        model.set('brush', brush);
        model.save_changes();
      },
      onParallelState: (state: IParallelState) => setOption('parallel', state)
    });
    disposables = drawn.disposables;
    known = new Set([...(payload.charts || []), ...(payload.values || [])].map((c: { metric: string }) => c.metric));
    const live = new Set<string>(payload.grouped ? [] : payload.live || []);
    for (const { metric, chart, lines, ids } of drawn.histories) {
      ids.forEach((id, i) => {
        if (live.has(id)) {
          if (!liveLines.has(id)) {
            liveLines.set(id, new Map());
          }
          liveLines.get(id)!.set(metric, { chart, line: lines[i] });
        }
      });
    }
    if (liveLines.size) {
      root.dataset.live = 'true'; // what the browser tests read
      liveTimer = window.setTimeout(poll, LIVE_POLL_MS);
    }
  }

  const onTab = () => {
    drawTabs();
    drawControls();
  };
  const onChoices = () => drawControls();
  const onPayload = () => {
    drawControls();
    drawBody();
  };
  model.on('change:tab', onTab);
  model.on('change:choices', onChoices);
  model.on('change:payload', onPayload);
  model.on('msg:custom', onKernel);
  const unTheme = onThemeChange(() => disposables.forEach(d => d.redraw?.()));
  drawTabs();
  drawControls();
  drawBody();
  return () => {
    model.off('change:tab', onTab);
    model.off('change:choices', onChoices);
    model.off('change:payload', onPayload);
    model.off('msg:custom', onKernel);
    unTheme();
    clear();
  };
}

export default { render };
