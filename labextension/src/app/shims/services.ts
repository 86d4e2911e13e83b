/**
 * What `api.ts` uses of `@jupyterlab/services`, for the standalone `mlo ui` bundle: the app's folder as the base
 * URL, and requests answered by the server (the token cookie goes along) or, in a static export, by the data files
 * written beside the page.
 */
import { isStatic, staticAnswer } from '../static';

export namespace ServerConnection {
  export interface ISettings {
    baseUrl: string;
  }

  export function makeSettings(): ISettings {
    return { baseUrl: new URL('.', window.location.href).href };
  }

  export function makeRequest(url: string, init: RequestInit, settings: ISettings): Promise<Response> {
    if (isStatic()) {
      return staticAnswer(url, settings.baseUrl);
    }
    return fetch(url, { ...init, credentials: 'same-origin', cache: 'no-store' });
  }
}
