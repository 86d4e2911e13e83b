/**
 * Two runs side by side in a main-area tab: the diff page (`diffpage.ts`) in a Lumino widget.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IRunDiff } from './api';
import { DiffPage } from './diffpage';
import { runLabel } from './dom';
import { mloIcon } from './icons';

export class DiffView extends Widget {
  constructor(
    readonly a: string,
    readonly b: string,
    openRun: (runId: string, label: string) => void = () => undefined
  ) {
    super();
    this._page = new DiffPage(this.node, a, b, openRun);
  }

  load(): Promise<IRunDiff | null> {
    return this._page.load();
  }

  private _page: DiffPage;
}

/** A main-area tab holding a `DiffView`. */
export function createDiffWidget(
  a: string,
  b: string,
  openRun: (runId: string, label: string) => void
): MainAreaWidget<DiffView> {
  const content = new DiffView(a, b, openRun);
  const widget = new MainAreaWidget({ content });
  widget.id = `mlo-diff-${a}-${b}`;
  widget.addClass('mlo-diff-tab');
  widget.title.label = `diff ${a.slice(0, 6)} ↔ ${b.slice(0, 6)}`;
  widget.title.icon = mloIcon;
  widget.title.closable = true;
  void content.load().then(diff => {
    if (diff) {
      widget.title.label = `${runLabel(diff.a.name, diff.a.id)} ↔ ${runLabel(diff.b.name, diff.b.id)}`;
    }
  });
  return widget;
}
