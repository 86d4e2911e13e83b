/**
 * Labelled dot plots for single-value metrics: a row per run (or per group, with its mean and a bar of ± one
 * standard deviation and the group's size), the value written beside the dot. Unlike bars from zero, dots keep
 * close values apart and every row says whose it is.
 */
import { formatValue, h } from '../dom';
import { niceTicks, s } from './svg';

export interface IDot {
  id: string;
  label: string;
  value: number;
  color: string;
  /** A group's spread: the bar drawn from lo to hi. */
  lo?: number;
  hi?: number;
  n?: number;
}

const ROW = 20;
const LABEL = 150;
const VALUE = 150;

export function dotPlot(title: string, dots: IDot[], width = 480): HTMLElement {
  const plotW = Math.max(120, width - LABEL - VALUE);
  const values = dots.flatMap(d => [d.value, d.lo ?? d.value, d.hi ?? d.value]).filter(v => isFinite(v));
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (!(hi > lo)) {
    lo -= Math.abs(lo) * 0.05 || 0.5;
    hi += Math.abs(hi) * 0.05 || 0.5;
  }
  const pad = (hi - lo) * 0.06;
  lo -= pad;
  hi += pad;
  const x = (v: number) => LABEL + ((v - lo) / (hi - lo)) * plotW;
  const height = dots.length * ROW + 26;
  const svg = s('svg', { width: LABEL + plotW + VALUE, height, class: 'mlo-dots-svg', role: 'img' });
  for (const t of niceTicks(lo, hi, 4)) {
    svg.appendChild(s('line', { x1: x(t), x2: x(t), y1: 4, y2: height - 20, class: 'mlo-grid' }));
    svg.appendChild(s('text', { x: x(t), y: height - 6, class: 'mlo-tick', 'text-anchor': 'middle' }, formatValue(t)));
  }
  dots.forEach((d, i) => {
    const y = 4 + i * ROW + ROW / 2;
    const row = s('g', { class: 'mlo-dot', 'data-id': d.id, 'data-value': d.value });
    const name = d.label.length > 22 ? d.label.slice(0, 21) + '…' : d.label;
    row.appendChild(s('text', { x: LABEL - 8, y: y + 4, 'text-anchor': 'end', class: 'mlo-dot-label' }, name));
    if (d.lo !== undefined && d.hi !== undefined) {
      row.appendChild(s('line', { x1: x(d.lo), x2: x(d.hi), y1: y, y2: y, stroke: d.color, 'stroke-width': 2 }));
    }
    row.appendChild(s('circle', { cx: x(d.value), cy: y, r: 5, fill: d.color }));
    const text = formatValue(d.value) + (d.n !== undefined ? ` ± ${formatValue(((d.hi ?? d.value) - (d.lo ?? d.value)) / 2)} (n=${d.n})` : '');
    row.appendChild(s('text', { x: LABEL + plotW + 6, y: y + 4, class: 'mlo-dot-value' }, text));
    row.appendChild(s('title', {}, `${d.label}: ${text}`));
    svg.appendChild(row);
  });
  return h('figure', { class: 'mlo-chart mlo-dots', 'data-metric': title }, h('figcaption', { class: 'mlo-chart-title', title }, title), svg);
}
