/**
 * The SDK client for TaskManager. The SDK prefers `process.env.CONDUCTOR_SERVER_URL` over
 * the URL it is given (a hidden global read); we pin every request to the configured URL
 * with a fetch that rewrites the origin, so a process talks to the server its config names.
 */
import { createConductorClient } from "@io-orkes/conductor-javascript";

export type SdkClient = Awaited<ReturnType<typeof createConductorClient>>;

export async function createSdkClient(serverUrl: string): Promise<SdkClient> {
  const target = new URL(serverUrl.replace(/\/+$/, "").replace(/\/api$/, ""));
  const pinnedFetch: typeof fetch = (input, init) => {
    const req = input instanceof Request ? input : undefined;
    const raw = req ? req.url : String(input);
    const url = new URL(raw);
    url.protocol = target.protocol;
    url.host = target.host;
    return req ? fetch(new Request(url, req), init) : fetch(url, init);
  };
  return createConductorClient({ serverUrl: target.toString().replace(/\/$/, "") }, pinnedFetch);
}
