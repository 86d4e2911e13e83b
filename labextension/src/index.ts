/**
 * mlo in JupyterLab: the "MLO" sidebar panel (experiments, runs, models, LLM traces), a tab per run and per trace, and
 * "Compare selected runs", which writes `%mlo compare ...` into the active notebook.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification, WidgetTracker } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { mloIcon } from './icons';
import { COMPARE_COMMAND, MloPanel } from './panel';
import { createDiffWidget, DiffView } from './diffview';
import { DIFF_COMMAND } from './panel';
import { createRunWidget, RunView } from './runview';
import { createTraceWidget, TraceView } from './traceview';
import { createEvalCompareWidget, EvalCompareView, EvalSection } from './evalview';

const PLUGIN_ID = 'mlo-workbench:plugin';

export namespace CommandIDs {
  export const compare = COMPARE_COMMAND;
  export const diff = DIFF_COMMAND;
  export const openRun = 'mlo:open-run';
  export const openTrace = 'mlo:open-trace';
  export const refresh = 'mlo:refresh';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The MLO panel: experiments, runs, models and LLM traces of the mlo workspace.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const { commands, shell } = app;
    const runTabs = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'mlo-run' });
    const traceTabs = new WidgetTracker<MainAreaWidget<TraceView>>({ namespace: 'mlo-trace' });
    const diffTabs = new WidgetTracker<MainAreaWidget<DiffView>>({ namespace: 'mlo-diff' });

    const openRun = (runId: string, label?: string) => {
      const open = runTabs.find(w => w.content.runId === runId);
      if (open && !open.isDisposed) {
        shell.activateById(open.id);
        return open;
      }
      const widget = createRunWidget(runId, label || runId.slice(0, 10), openTrace);
      void runTabs.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      return widget;
    };

    function openTrace(traceId: string, label?: string) {
      const open = traceTabs.find(w => w.content.traceId === traceId);
      if (open && !open.isDisposed) {
        shell.activateById(open.id);
        return open;
      }
      const widget = createTraceWidget(traceId, label || traceId.slice(0, 10), (id, l) => void openRun(id, l));
      void traceTabs.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      return widget;
    }

    const evalTabs = new WidgetTracker<MainAreaWidget<EvalCompareView>>({ namespace: 'mlo-eval' });
    const openEvalCompare = (a: string, b: string, label: string) => {
      const open = evalTabs.find(w => w.content.a === a && w.content.b === b);
      const widget = open && !open.isDisposed ? open : createEvalCompareWidget(a, b, label);
      if (widget !== open) {
        void evalTabs.add(widget);
        shell.add(widget, 'main');
      }
      shell.activateById(widget.id);
    };
    const panel = new MloPanel({
      commands,
      openRun: (id, label) => void openRun(id, label),
      openTrace: (id, label) => void openTrace(id, label),
      sections: [new EvalSection(openEvalCompare)]
    });
    panel.title.icon = mloIcon;
    panel.title.caption = 'MLO';
    shell.add(panel, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(panel, 'mlo-panel');
      void restorer.restore(runTabs, {
        command: CommandIDs.openRun,
        args: w => ({ runId: w.content.runId, label: w.title.label }),
        name: w => w.content.runId
      });
      void restorer.restore(traceTabs, {
        command: CommandIDs.openTrace,
        args: w => ({ traceId: w.content.traceId, label: w.title.label }),
        name: w => w.content.traceId
      });
    }

    const tell = (message: string) => {
      panel.setStatus(message, 'info');
      Notification.info(message, { autoClose: 6000 });
    };

    commands.addCommand(CommandIDs.compare, {
      label: 'Compare selected runs',
      caption: 'Insert `%mlo compare` with the runs checked in the MLO panel below the active notebook cell',
      execute: async () => {
        const ids = panel.selectedRunIds();
        if (!ids.length) {
          tell('Check the runs to compare in the MLO panel first.');
          return;
        }
        const notebook = notebooks.currentWidget;
        if (!notebook) {
          tell('Open a notebook first: the comparison is inserted below its active cell.');
          return;
        }
        await notebook.context.ready;
        const content = notebook.content;
        NotebookActions.insertBelow(content);
        const cell = content.activeCell;
        if (!cell) {
          tell('The notebook has no active cell to insert below.');
          return;
        }
        cell.model.sharedModel.setSource(`%mlo compare ${ids.join(' ')}`);
        shell.activateById(notebook.id);
        panel.setStatus(`Inserted %mlo compare with ${ids.length} run${ids.length === 1 ? '' : 's'}.`, 'info');
      }
    });

    commands.addCommand(CommandIDs.diff, {
      label: 'Diff two selected runs',
      caption: 'Open a tab with what differs between the two runs checked in the MLO panel',
      execute: () => {
        const ids = panel.selectedRunIds();
        if (ids.length !== 2) {
          tell(`Check exactly two runs to diff (${ids.length} checked).`);
          return;
        }
        const [a, b] = ids;
        panel.setStatus('');
        const open = diffTabs.find(w => w.content.a === a && w.content.b === b);
        if (open && !open.isDisposed) {
          shell.activateById(open.id);
          return;
        }
        const widget = createDiffWidget(a, b, (id, label) => void openRun(id, label));
        void diffTabs.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });

    commands.addCommand(CommandIDs.openRun, {
      label: args => (args.label ? `Open run ${args.label as string}` : 'Open run'),
      execute: args => {
        const runId = args.runId as string | undefined;
        if (runId) {
          return openRun(runId, args.label as string | undefined);
        }
      }
    });

    commands.addCommand(CommandIDs.openTrace, {
      label: args => (args.label ? `Open trace ${args.label as string}` : 'Open trace'),
      execute: args => {
        const traceId = args.traceId as string | undefined;
        if (traceId) {
          return openTrace(traceId, args.label as string | undefined);
        }
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the MLO panel',
      execute: () => panel.refresh()
    });

    if (palette) {
      palette.addItem({ command: CommandIDs.compare, category: 'MLO' });
      palette.addItem({ command: CommandIDs.diff, category: 'MLO' });
      palette.addItem({ command: CommandIDs.refresh, category: 'MLO' });
    }
  }
};

export default plugin;
