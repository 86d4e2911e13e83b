/**
 * Two runs side by side, only what tells them apart first: params and metrics (differing rows marked), the code
 * cells that ran (a unified diff), the environment (Python, platform, package versions) and git. Free of
 * JupyterLab: the diff tab (`diffview.ts`) and the standalone `mlo ui` app both host it.
 */
import { api, IRunDiff, IDiffPair } from './api';
import { formatValue, h, runLabel, statusBadge } from './dom';

export class DiffPage {
  constructor(
    readonly node: HTMLElement,
    readonly a: string,
    readonly b: string,
    private readonly _openRun: (runId: string, label: string) => void = () => undefined
  ) {
    node.classList.add('mlo-diff-view');
    this.node.dataset.a = a;
    this.node.dataset.b = b;
    this.node.tabIndex = -1;
  }

  async load(): Promise<IRunDiff | null> {
    try {
      const diff = await api.diff(this.a, this.b);
      this._render(diff);
      return diff;
    } catch (error) {
      this.node.replaceChildren(h('div', { class: 'mlo-status-line', 'data-kind': 'error' }, (error as Error).message));
      return null;
    }
  }

  private _render(d: IRunDiff): void {
    const la = runLabel(d.a.name, d.a.id);
    const lb = runLabel(d.b.name, d.b.id);
    const runLink = (side: IRunDiff['a'], label: string) =>
      h(
        'button',
        { class: 'mlo-link mlo-diff-run', 'data-run-id': side.id, title: side.id, onclick: () => this._openRun(side.id, label) },
        label
      );
    const onlyDiffering = h('input', {
      type: 'checkbox',
      class: 'mlo-diff-only',
      onchange: (e: Event) => this.node.classList.toggle('mlo-diff-hide-same', (e.target as HTMLInputElement).checked)
    });
    const gitRows: [string, unknown, unknown][] = [
      ['commit', d.git.a?.commit, d.git.b?.commit],
      ['branch', d.git.a?.branch, d.git.b?.branch],
      ['uncommitted changes', d.git.a ? d.git.a.dirty : null, d.git.b ? d.git.b.dirty : null]
    ];
    this.node.replaceChildren(
      h(
        'h1',
        { class: 'mlo-run-title' },
        runLink(d.a, la),
        ' ',
        statusBadge(d.a.status),
        ' ↔ ',
        runLink(d.b, lb),
        ' ',
        statusBadge(d.b.status)
      ),
      h('label', { class: 'mlo-diff-toggle' }, onlyDiffering, ' only what differs'),
      section('Params', 'params', pairTable('mlo-diff-params', d.params, la, lb)),
      section('Metrics', 'metrics', pairTable('mlo-diff-metrics', d.metrics, la, lb)),
      section('Code', 'cells', codeDiff(d.cells)),
      section('Environment', 'env', envDiff(d, la, lb)),
      section(
        'Git',
        'git',
        d.git.a || d.git.b
          ? table(
              'mlo-diff-git',
              la,
              lb,
              gitRows.map(([key, va, vb]) => ({ key, a: va ?? null, b: vb ?? null, only: null, same: va === vb }))
            )
          : h('p', { class: 'mlo-empty' }, 'Neither run was in a git repository.')
      )
    );
  }
}

function section(title: string, key: string, content: HTMLElement): HTMLElement {
  return h('section', { class: 'mlo-run-section', 'data-section': key }, h('h2', {}, title), content);
}

function table(className: string, la: string, lb: string, rows: IDiffPair[]): HTMLElement {
  return h(
    'table',
    { class: `mlo-table mlo-diff-table ${className}` },
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { title: la }, la), h('th', { title: lb }, lb))),
    h(
      'tbody',
      {},
      rows.map(r =>
        h(
          'tr',
          { 'data-key': r.key, 'data-same': String(r.same), class: r.same ? '' : 'mlo-differs' },
          h('th', {}, r.key),
          h('td', { class: r.only === 'b' ? 'mlo-absent' : '' }, r.only === 'b' ? '—' : formatValue(r.a)),
          h('td', { class: r.only === 'a' ? 'mlo-absent' : '' }, r.only === 'a' ? '—' : formatValue(r.b))
        )
      )
    )
  );
}

function pairTable(className: string, rows: IDiffPair[], la: string, lb: string): HTMLElement {
  if (!rows.length) {
    return h('p', { class: `mlo-empty ${className}` }, 'None in either run.');
  }
  const differing = rows.filter(r => !r.same).length;
  return h(
    'div',
    {},
    h('p', { class: 'mlo-diff-summary' }, differing ? `${differing} of ${rows.length} differ` : `all ${rows.length} the same`),
    table(className, la, lb, rows)
  );
}

function codeDiff(lines: string[]): HTMLElement {
  if (!lines.length) {
    return h('p', { class: 'mlo-empty mlo-diff-cells' }, 'Both runs ran the same code.');
  }
  return h(
    'pre',
    { class: 'mlo-diff-cells' },
    lines.map(line => {
      const kind = line.startsWith('@@')
        ? 'hunk'
        : line.startsWith('+++') || line.startsWith('---')
          ? 'file'
          : line.startsWith('+')
            ? 'add'
            : line.startsWith('-')
              ? 'del'
              : 'same';
      return h('span', { class: `mlo-diff-line`, 'data-kind': kind }, line + '\n');
    })
  );
}

function envDiff(d: IRunDiff, la: string, lb: string): HTMLElement {
  const parts: HTMLElement[] = [];
  if (d.env.length) {
    parts.push(table('mlo-diff-env', la, lb, d.env));
  }
  if (!d.packages_compared) {
    parts.push(h('p', { class: 'mlo-empty' }, 'Package versions were not recorded for both runs.'));
  } else if (d.packages.length) {
    parts.push(h('p', { class: 'mlo-diff-summary' }, `${d.packages.length} packages differ`));
    parts.push(table('mlo-diff-packages', la, lb, d.packages));
  } else {
    parts.push(h('p', { class: 'mlo-empty mlo-diff-packages' }, 'The same package versions.'));
  }
  if (!d.env.length && d.packages_compared) {
    parts.unshift(h('p', { class: 'mlo-empty' }, 'The same Python and platform.'));
  }
  return h('div', {}, parts);
}

