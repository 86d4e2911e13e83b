/**
 * The mlo server extension's REST API (`/mlo/api/...`), through Jupyter's authenticated connection: the token
 * and the XSRF cookie are handled by `ServerConnection`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** One experiment, as `GET /mlo/api/experiments` lists them. */
export interface IExperiment {
  id: string;
  name: string;
  created_at: number;
  runs: number;
  last_run: number | null;
}

/** One row of `GET /mlo/api/runs`: fixed columns plus `params.*`, `metrics.*` and `tags.*`. */
export interface IRunRow {
  run_id: string;
  experiment: string;
  name: string | null;
  status: string;
  start_time: string | null;
  end_time: string | null;
  duration: number | null;
  [column: string]: unknown;
}

export interface IRunsPage {
  /** How many runs match; a lower bound when `total_exact` is false (the API stops counting at a cap). */
  total: number;
  total_exact?: boolean;
  offset: number;
  limit: number;
  runs: IRunRow[];
}

export interface IArtifact {
  path: string;
  digest: string;
  size: number;
  media_type: string | null;
  created_at: string | null;
}

export interface ICell {
  seq: number;
  source: string;
  execution_count: number | null;
  success: boolean;
  duration: number | null;
  started_at: string | null;
  error: string | null;
}

export interface IGit {
  commit?: string | null;
  branch?: string | null;
  dirty?: boolean;
  [key: string]: unknown;
}

/** One run, as `GET /mlo/api/runs/<id>` returns it. */
export interface IRun {
  id: string;
  name: string | null;
  experiment: string;
  status: string;
  start_time: string;
  end_time: string | null;
  duration: number | null;
  parent_id: string | null;
  note?: string | null;
  user: string | null;
  source: string | null;
  git: IGit | null;
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
  tags: Record<string, unknown>;
  artifacts: IArtifact[];
  cells: ICell[];
}

/** One registered model version (a row of `GET /mlo/api/models`), plus the run's `metrics.*`. */
export interface IModelVersion {
  name: string;
  version: number;
  aliases: string;
  flavor: string | null;
  model_class: string | null;
  run_id: string | null;
  digest: string;
  size: number | null;
  created_by: string | null;
  created_at: string | null;
  [column: string]: unknown;
}

/** One row of `GET /mlo/api/traces`: a trace's totals (cost is null when a call's model has no price). */
export interface ITraceRow {
  trace_id: string;
  name: string;
  status: string;
  start_time: string | null;
  duration: number | null;
  run_id: string | null;
  notebook: string | null;
  cell: number | null;
  spans: number;
  llm_calls: number;
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost_usd: number | null;
  models: string | null;
  prompts: string | null;
  replayed: boolean;
  error: string | null;
}

export interface ITracesPage {
  total: number;
  offset: number;
  limit: number;
  traces: ITraceRow[];
}

export interface IUsage {
  input: number | null;
  output: number | null;
  cached: number | null;
  reasoning: number | null;
}

/** One span of `GET /mlo/api/traces/<id>`, with its children. Times are microseconds since the epoch. */
export interface ISpan {
  span_id: string;
  parent_id: string | null;
  name: string;
  kind: string;
  status: string;
  start_time: number;
  end_time: number | null;
  duration_s: number | null;
  model: string | null;
  usage: IUsage;
  prompt: string | null;
  error: string | null;
  cost_usd: number | null;
  attributes: Record<string, unknown>;
  input: string | null;
  output: string | null;
  content: 'full' | 'omitted';
  content_error?: string;
  children: ISpan[];
}

/** One trace, as `GET /mlo/api/traces/<id>` returns it. */
export interface ITrace {
  trace_id: string;
  name: string;
  status: string;
  run_id: string | null;
  notebook: string | null;
  cell: number | null;
  start_time: string;
  duration_s: number | null;
  usage: IUsage;
  cost_usd: number | null;
  replayed: boolean;
  error: string | null;
  span_count: number;
  spans: ISpan[];
}

/** One metric's history in `GET /mlo/api/runs/<id>/metrics` (`time`: seconds since the epoch; null: NaN). */
export interface IMetricHistory {
  step: number[];
  value: (number | null)[];
  time: number[];
  /** points after `since_step` before thinning */
  points: number;
  thinned: boolean;
}

export interface IMetricHistories {
  run_id: string;
  status: string;
  metrics: Record<string, IMetricHistory>;
}

/** One key of a run diff: both values; `only` names the run that alone has it. */
export interface IDiffPair {
  key: string;
  a: unknown;
  b: unknown;
  only: 'a' | 'b' | null;
  same: boolean;
}

interface IDiffSide {
  id: string;
  name: string | null;
  experiment: string;
  status: string;
}

/** `GET /mlo/api/diff?a=&b=`: what differs between two runs. */
export interface IRunDiff {
  a: IDiffSide;
  b: IDiffSide;
  params: IDiffPair[];
  metrics: IDiffPair[];
  env: IDiffPair[];
  packages: IDiffPair[];
  packages_compared: boolean;
  git: { a: IGit | null; b: IGit | null; same: boolean };
  cells: string[];
}

/** An error answered by the API: its one-line message and HTTP status (0 when the server was not reached). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Query = Record<string, string | number | undefined | null>;

function apiUrl(settings: ServerConnection.ISettings, path: string, query?: Query): string {
  const url = URLExt.join(settings.baseUrl, 'mlo/api', path);
  if (!query) {
    return url;
  }
  const defined: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') {
      defined[key] = String(value);
    }
  }
  return Object.keys(defined).length ? url + URLExt.objectToQueryString(defined) : url;
}

/** GET a JSON document from `/mlo/api/<path>`; an error answer becomes an `ApiError` with its message. */
export async function requestAPI<T>(path: string, query?: Query): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(settings, path, query), {}, settings);
  } catch (error) {
    throw new ApiError(`cannot reach the Jupyter server: ${(error as Error).message}`, 0);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data.error === 'string' && data.error) ||
      (data && typeof data.message === 'string' && data.message) ||
      `${response.status} ${response.statusText}`;
    throw new ApiError(message, response.status);
  }
  if (data === null) {
    throw new ApiError(`unexpected answer from ${path}: not JSON`, response.status);
  }
  return data as T;
}

function segment(part: string): string {
  return encodeURIComponent(part);
}

/** The URL of one of a run's artifacts, served by the API (the browser's session authenticates it). */
export function artifactUrl(runId: string, path: string): string {
  const settings = ServerConnection.makeSettings();
  const encoded = path.split('/').map(segment).join('/');
  return URLExt.join(settings.baseUrl, 'mlo/api/runs', segment(runId), 'artifacts', encoded);
}

/** The first rows of a tabular artifact (`?preview=table`). */
export interface ITableHead {
  columns: string[];
  rows: unknown[][];
  rows_total: number | null;
}

/** The text at a URL of the API (an artifact, an HTML page), through the authenticated connection. */
export async function requestText(url: string): Promise<string> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(url, {}, settings);
  const text = await response.text();
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = JSON.parse(text).error ?? message;
    } catch {
      // not JSON: the status line says enough
    }
    throw new ApiError(message, response.status);
  }
  return text;
}

/** An artifact's text, through the authenticated connection. */
export function artifactText(runId: string, path: string): Promise<string> {
  return requestText(artifactUrl(runId, path));
}

/** The URL of `/mlo/api/<path>`. */
export function apiPath(path: string): string {
  return apiUrl(ServerConnection.makeSettings(), path);
}

export const api = {
  experiments: () => requestAPI<IExperiment[]>('experiments'),
  runs: (experiment: string | undefined, offset: number, limit: number, where?: string) =>
    requestAPI<IRunsPage>('runs', { experiment, offset, limit, where }),
  runIds: (where: string, offset: number, limit: number) =>
    requestAPI<IRunsPage>('runs', { where, offset, limit, columns: 'run_id' }),
  run: (runId: string) => requestAPI<IRun>(`runs/${segment(runId)}`),
  metrics: (runId: string, sinceStep?: number) =>
    requestAPI<IMetricHistories>(`runs/${segment(runId)}/metrics`, { since_step: sinceStep }),
  tableHead: (runId: string, path: string) =>
    requestAPI<ITableHead>(
      `runs/${segment(runId)}/artifacts/${path.split('/').map(segment).join('/')}`,
      { preview: 'table' }
    ),
  diff: (a: string, b: string) => requestAPI<IRunDiff>('diff', { a, b }),
  models: () => requestAPI<{ versions: IModelVersion[] }>('models'),
  traces: (offset: number, limit: number, run?: string) =>
    requestAPI<ITracesPage>('traces', { offset, limit, run }),
  trace: (traceId: string) => requestAPI<ITrace>(`traces/${segment(traceId)}`)
};
