/**
 * The API key, kept for this browser tab's session only (sessionStorage: gone when the tab
 * closes, never in a URL, never sent anywhere but this origin's /v1 as a header).
 */
const SLOT = "trackscribe.apiKey";

export interface KeyStore {
  get(): string | null;
  set(key: string): void;
  clear(): void;
}

export function sessionKeyStore(storage: Storage = window.sessionStorage): KeyStore {
  return {
    get: () => storage.getItem(SLOT),
    set: (key) => storage.setItem(SLOT, key),
    clear: () => storage.removeItem(SLOT),
  };
}
