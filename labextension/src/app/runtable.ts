/**
 * The runs of a filter as one scrolling table, however many there are: rows have a fixed height, only those in
 * view (and a margin) are in the DOM — a scroll adds the rows coming into range and removes those leaving it,
 * leaving the rest in place — and pages of `PAGE` rows are asked of the API as the view reaches them, so
 * 10,000 runs cost what 60 do.
 */
import { api, IRunRow } from '../api';
import { colorFor } from '../charts';
import { formatCount, formatDuration, formatTime, formatValue, h, runLabel, statusBadge } from '../dom';

export const ROW_HEIGHT = 30;
/** Dispatched on the table's node when its total changes (a lower bound grew, or became exact). */
export const TOTAL_EVENT = 'mlo-total';
const PAGE = 200;
const MARGIN = 40; // rows drawn above and below the view: a scroll within them redraws nothing
const MAX_COLUMNS = 8; // params and metrics shown as columns (the rest are on the run's page)

export interface IRunTableQuery {
  experiment?: string;
  where?: string;
}

export class RunTable {
  readonly node: HTMLElement;

  constructor(
    private readonly _query: IRunTableQuery,
    private readonly _selected: Set<string>,
    private readonly _onTick: () => void
  ) {
    this._topSpacer = h('tr', { class: 'mlo-app-spacer' });
    this._bottomSpacer = h('tr', { class: 'mlo-app-spacer' });
    this._body = h('tbody', {}, this._topSpacer, this._bottomSpacer);
    this._table = h('table', { class: 'mlo-table mlo-app-runs' }, h('thead', {}), this._body);
    this.node = h('div', { class: 'mlo-app-scroll', tabindex: 0 }, this._table);
    this.node.addEventListener('scroll', () => this._schedule(false), { passive: true });
  }

  /** The first page: the total and the columns; resolves to the total. When the API stopped counting at a cap,
   * the total is a lower bound (`exact` false, shown as "10,000+"): the table is as tall as it, grows as the
   * pages beyond it come, and is exact once a page comes short. */
  async load(): Promise<number> {
    const first = await this._page(0);
    this._columns = [...columnsOf(first, 'params.'), ...columnsOf(first, 'metrics.')];
    const head = ['', 'run', 'experiment', 'status', 'start', 'duration', ...this._columns];
    this._table.tHead!.replaceChildren(
      h('tr', {}, head.map(c => h('th', { title: c }, c.replace(/^(params|metrics)\./, ''))))
    );
    this.node.dataset.total = String(this._count);
    this._render();
    return this._count;
  }

  /** Whether the total is every match (false: the API stopped counting at a cap). */
  get exact(): boolean {
    return this._exact;
  }

  /** The total as shown: "10,000+" when it is a lower bound. */
  get count(): string {
    return formatCount(this._count, this._exact);
  }

  /** Re-tick the checkboxes from the selection. */
  syncTicks(): void {
    this._body.querySelectorAll<HTMLInputElement>('input.mlo-app-tick').forEach(box => {
      box.checked = this._selected.has(box.dataset.runId!);
    });
  }

  private async _page(index: number): Promise<IRunRow[]> {
    const known = this._pages.get(index);
    if (known) {
      return known;
    }
    const answer = await api.runs(this._query.experiment, index * PAGE, PAGE, this._query.where);
    const end = index * PAGE + answer.runs.length;
    const before = this.count;
    if (answer.total_exact !== false) {
      this._total = this._count = answer.total;
      this._exact = true;
    } else if (answer.runs.length < PAGE) {
      this._total = this._count = end; // a short page is the last: the matches are counted now
      this._exact = true;
    } else if (!this._exact || index === 0) {
      // a lower bound, which grows as pages beyond it come; a row more than a full page's end, so that
      // scrolling to it asks for the next page
      this._count = Math.max(this._count, answer.total, end);
      this._total = Math.max(this._total, this._count, end + 1);
      this._exact = false;
    }
    this.node.dataset.total = String(this._count);
    this.node.dataset.exact = String(this._exact);
    this._pages.set(index, answer.runs);
    if (this.count !== before) {
      this._schedule(true); // the table's height follows the total
      this.node.dispatchEvent(new Event(TOTAL_EVENT));
    }
    return answer.runs;
  }

  private _schedule(force: boolean): void {
    this._force ||= force;
    if (!this._frame) {
      this._frame = requestAnimationFrame(() => {
        this._frame = 0;
        this._render();
      });
    }
  }

  private _render(): void {
    const view = this.node.clientHeight || 600;
    const top = Math.floor(this.node.scrollTop / ROW_HEIGHT);
    const bottom = Math.min(this._total, Math.ceil((this.node.scrollTop + view) / ROW_HEIGHT));
    const covered = (top - this._from >= MARGIN / 2 || this._from === 0) && (this._to - bottom >= MARGIN / 2 || this._to >= this._total);
    if (!this._force && top >= this._from && bottom <= this._to && covered) {
      return; // the rows in view, and half a margin either side, are drawn already
    }
    if (this._force) {
      // rows drawn while their page was loading are drawn again
      for (const [i, tr] of this._drawn) {
        if (tr.classList.contains('mlo-app-loading')) {
          tr.remove();
          this._drawn.delete(i);
        }
      }
    }
    this._force = false;
    const first = Math.max(0, top - MARGIN);
    const last = Math.min(this._total, bottom + MARGIN);
    this._from = first;
    this._to = last;
    // only the rows that come into the range are built; those that stay are left in place (no relayout of them)
    for (const [i, tr] of this._drawn) {
      if (i < first || i >= last) {
        tr.remove();
        this._drawn.delete(i);
      }
    }
    const wanted = new Set<number>();
    let next: ChildNode = this._bottomSpacer;
    for (let i = last - 1; i >= first; i--) {
      const drawn = this._drawn.get(i);
      if (drawn) {
        next = drawn;
        continue;
      }
      const page = this._pages.get(Math.floor(i / PAGE));
      const row = page?.[i % PAGE];
      let tr: HTMLElement;
      if (row) {
        tr = this._row(row, i);
      } else {
        wanted.add(Math.floor(i / PAGE));
        tr = h('tr', { class: 'mlo-app-row mlo-app-loading', 'data-index': i }, h('td', { colspan: 6 }, '…'));
      }
      this._body.insertBefore(tr, next);
      this._drawn.set(i, tr);
      next = tr;
    }
    this._topSpacer.style.height = `${first * ROW_HEIGHT}px`;
    this._bottomSpacer.style.height = `${(this._total - last) * ROW_HEIGHT}px`;
    this.node.dataset.first = String(first);
    // the pages just beyond the drawn rows are asked for ahead, so a steady scroll rarely meets a loading row
    for (const i of [first - PAGE / 2, last + PAGE / 2]) {
      const index = Math.floor(i / PAGE);
      if (i >= 0 && i < this._total && !this._pages.has(index)) {
        wanted.add(index);
      }
    }
    for (const index of wanted) {
      if (!this._loading.has(index)) {
        this._loading.add(index);
        void this._page(index)
          .then(() => index * PAGE < this._to && (index + 1) * PAGE > this._from && this._schedule(true))
          .finally(() => this._loading.delete(index));
      }
    }
  }

  private _row(row: IRunRow, index: number): HTMLElement {
    return h(
      'tr',
      { class: 'mlo-app-row', 'data-run-id': row.run_id, 'data-status': row.status, 'data-index': index },
      h(
        'td',
        {},
        h('input', {
          type: 'checkbox',
          class: 'mlo-app-tick',
          'data-run-id': row.run_id,
          checked: this._selected.has(row.run_id),
          'aria-label': `tick ${runLabel(row.name, row.run_id)}`,
          onchange: (e: Event) => {
            if ((e.target as HTMLInputElement).checked) {
              this._selected.add(row.run_id);
            } else {
              this._selected.delete(row.run_id);
            }
            this._onTick();
          }
        })
      ),
      h(
        'td',
        { class: 'mlo-app-name', title: `${row.name ?? ''} ${row.run_id}`.trim() },
        h('span', { class: 'mlo-swatch', style: `background:${colorFor(row.run_id)}` }),
        h('a', { href: `#/run/${encodeURIComponent(row.run_id)}`, class: 'mlo-app-run-link', title: row.run_id }, runLabel(row.name, row.run_id))
      ),
      h('td', { title: row.experiment }, row.experiment),
      h('td', {}, statusBadge(row.status)),
      h('td', {}, formatTime(row.start_time)),
      h('td', {}, row.status === 'running' ? 'running' : formatDuration(row.duration)),
      this._columns.map(c =>
        h('td', { 'data-column': c, title: row[c] === null || row[c] === undefined ? '' : `${c} = ${row[c]}` }, formatValue(row[c]))
      )
    );
  }

  private _body: HTMLTableSectionElement;
  private _topSpacer: HTMLElement;
  private _bottomSpacer: HTMLElement;
  private _drawn = new Map<number, HTMLElement>(); // the rows in the DOM, by index
  private _table: HTMLTableElement;
  private _columns: string[] = [];
  private _pages = new Map<number, IRunRow[]>();
  private _loading = new Set<number>();
  private _total = 0; // rows the table is as tall as
  private _count = 0; // matches as shown (with _exact false, a lower bound)
  private _exact = true;
  private _frame = 0;
  private _force = true;
  private _from = 0; // the rows drawn: [_from, _to)
  private _to = 0;
}

function columnsOf(rows: IRunRow[], prefix: string): string[] {
  const seen = new Set<string>();
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      if (key.startsWith(prefix) && value !== null && value !== undefined) {
        seen.add(key);
      }
    }
  }
  return [...seen].sort().slice(0, MAX_COLUMNS);
}
