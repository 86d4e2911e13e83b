/** Parameter importance for a metric: a bar per param, the measure named above it (a forest's importance and a
 * rank correlation are different things, and the reader should know which one this is). */
import { formatValue, h } from '../dom';

export interface IImportance {
  metric: string;
  method: string;
  label: string;
  runs: number;
  values: { param: string; importance: number }[];
}

export function importanceChart(data: IImportance): HTMLElement {
  const top = Math.max(1e-12, ...data.values.map(v => v.importance));
  return h(
    'figure',
    { class: 'mlo-chart mlo-importance', 'data-method': data.method, 'data-metric': data.metric },
    h('figcaption', { class: 'mlo-chart-title' }, `What matters for ${data.metric}`),
    h('div', { class: 'mlo-m mlo-importance-method' }, `${data.label} · over ${data.runs} runs`),
    h(
      'div',
      { class: 'mlo-importance-rows' },
      data.values.map(v =>
        h(
          'div',
          { class: 'mlo-importance-row', 'data-param': v.param, title: `${v.param}: ${formatValue(v.importance)}` },
          h('span', { class: 'mlo-importance-name' }, v.param),
          h('span', { class: 'mlo-importance-track' }, h('span', { class: 'mlo-importance-bar', style: `width: ${(100 * v.importance) / top}%` })),
          h('span', { class: 'mlo-importance-value' }, formatValue(v.importance))
        )
      )
    )
  );
}
