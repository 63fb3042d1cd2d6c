/**
 * The SDK client for TaskManager. The SDK prefers `process.env.CONDUCTOR_SERVER_URL` over
 * the URL it is given (a hidden global read); we pin every request to the configured URL
 * with a fetch that rewrites the origin, so a process talks to the server its config names.
 *
 * One-task polls: the SDK asks for as many tasks as it has free slots, and Conductor
 * holds a poll until it has that many or the long-poll window ends. A step that comes one
 * per workflow was therefore held for the whole window after the server had found it
 * (≈ 100 ms on every step of the chain with a 100 ms window, a whole second with 1 s).
 * The fetch asks for one task for our task types: Conductor answers as soon as it finds
 * one, and the SDK polls again after its poll interval while it has free slots, so the
 * tracks of a fork are picked up one poll interval apart and concurrency is unchanged.
 * That makes a long window free, and a long window is what keeps idle polling cheap.
 */
import { createConductorClient } from "@io-orkes/conductor-javascript";

export type SdkClient = Awaited<ReturnType<typeof createConductorClient>>;

const BATCH_POLL = /\/tasks\/poll\/batch\/([^/?]+)$/;

/** The poll URL as sent: `count` set to 1 for task types in `singleTaskPolls`. */
export function pollUrl(url: URL, singleTaskPolls: ReadonlySet<string>): URL {
  const m = BATCH_POLL.exec(url.pathname);
  if (!m || !singleTaskPolls.has(decodeURIComponent(m[1]!)) || !url.searchParams.has("count")) return url;
  const out = new URL(url);
  out.searchParams.set("count", "1");
  return out;
}

export async function createSdkClient(serverUrl: string, opts: { singleTaskPolls?: ReadonlySet<string> } = {}): Promise<SdkClient> {
  const target = new URL(serverUrl.replace(/\/+$/, "").replace(/\/api$/, ""));
  const single = opts.singleTaskPolls ?? new Set<string>();
  const pinnedFetch: typeof fetch = (input, init) => {
    const req = input instanceof Request ? input : undefined;
    const raw = req ? req.url : String(input);
    let url = new URL(raw);
    url.protocol = target.protocol;
    url.host = target.host;
    url = pollUrl(url, single);
    return req ? fetch(new Request(url, req), init) : fetch(url, init);
  };
  return createConductorClient({ serverUrl: target.toString().replace(/\/$/, "") }, pinnedFetch);
}
