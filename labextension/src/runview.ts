/**
 * One run in a main-area tab: the run's page (`runpage.ts`) in a Lumino widget, with a refresh button.
 */
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IRun } from './api';
import { runLabel } from './dom';
import { mloIcon } from './icons';
import { RunPage } from './runpage';

export class RunView extends Widget {
  constructor(
    readonly runId: string,
    openTrace: (traceId: string, label: string) => void = () => undefined
  ) {
    super();
    this._page = new RunPage(this.node, runId, openTrace, () => this.isVisible);
  }

  /** The run as last loaded (null before the first answer). */
  get run(): IRun | null {
    return this._page.run;
  }

  load(): Promise<IRun | null> {
    return this._page.load();
  }

  dispose(): void {
    this._page.dispose();
    super.dispose();
  }

  private _page: RunPage;
}

/** A main-area tab holding a `RunView`, with a refresh button. */
export function createRunWidget(
  runId: string,
  label: string,
  openTrace?: (traceId: string, label: string) => void
): MainAreaWidget<RunView> {
  const content = new RunView(runId, openTrace);
  const widget = new MainAreaWidget({ content });
  widget.id = `mlo-run-${runId}`;
  widget.addClass('mlo-run-tab');
  widget.title.label = label;
  widget.title.caption = `run ${runId}`;
  widget.title.icon = mloIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({
      icon: refreshIcon,
      tooltip: 'Reload the run',
      onClick: () => void content.load().then(run => run && (widget.title.label = runLabel(run.name, run.id)))
    })
  );
  void content.load().then(run => {
    if (run) {
      widget.title.label = runLabel(run.name, run.id);
    }
  });
  return widget;
}
