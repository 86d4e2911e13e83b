/**
 * What `api.ts` uses of `@jupyterlab/coreutils`, for the standalone `mlo ui` bundle (webpack aliases the package
 * to this file there, so the bundle carries no JupyterLab code).
 */
export const URLExt = {
  join(...parts: string[]): string {
    const [first, ...rest] = parts.filter(p => p !== '');
    const tail = rest.map(p => p.replace(/^\/+|\/+$/g, '')).filter(Boolean);
    return [first.replace(/\/+$/, ''), ...tail].join('/');
  },
  objectToQueryString(value: Record<string, string>): string {
    const pairs = Object.entries(value).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    return pairs.length ? `?${pairs.join('&')}` : '';
  }
};
