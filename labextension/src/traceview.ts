/**
 * One LLM trace in a main-area tab: the trace page (`tracepage.ts`) in a Lumino widget, with a refresh button.
 */
import { MainAreaWidget, ToolbarButton } from '@jupyterlab/apputils';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ITrace } from './api';
import { mloIcon } from './icons';
import { TracePage } from './tracepage';

export class TraceView extends Widget {
  constructor(
    readonly traceId: string,
    openRun: (runId: string, label: string) => void
  ) {
    super();
    this._page = new TracePage(this.node, traceId, openRun);
  }

  /** The trace as last loaded (null before the first answer). */
  get trace(): ITrace | null {
    return this._page.trace;
  }

  load(): Promise<ITrace | null> {
    return this._page.load();
  }

  private _page: TracePage;
}

/** A main-area tab holding a `TraceView`, with a refresh button (a running trace fills in on reload). */
export function createTraceWidget(
  traceId: string,
  label: string,
  openRun: (runId: string, label: string) => void
): MainAreaWidget<TraceView> {
  const content = new TraceView(traceId, openRun);
  const widget = new MainAreaWidget({ content });
  widget.id = `mlo-trace-${traceId}`;
  widget.addClass('mlo-trace-tab');
  widget.title.label = label;
  widget.title.caption = `trace ${traceId}`;
  widget.title.icon = mloIcon;
  widget.title.closable = true;
  widget.toolbar.addItem(
    'refresh',
    new ToolbarButton({ icon: refreshIcon, tooltip: 'Reload the trace', onClick: () => void content.load() })
  );
  void content.load().then(trace => {
    if (trace) {
      widget.title.label = trace.name;
    }
  });
  return widget;
}
