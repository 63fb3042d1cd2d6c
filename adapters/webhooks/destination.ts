/**
 * Where a webhook may be sent. A receiver's URL is the client's to choose, so without a
 * check the API would make requests into its own network for anyone with a key (the cloud
 * metadata service, Postgres' neighbours, loopback admin ports). The destination is
 * resolved once per attempt and refused when any address it resolves to is loopback,
 * private, link-local, unique-local, multicast, reserved or metadata space; the request
 * then connects to exactly the address that was checked (no second lookup a DNS answer
 * could change in between). WEBHOOK_ALLOW_PRIVATE=true lifts the address check (tests,
 * receivers on the same private network).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import net from "node:net";

const blocked = new net.BlockList();
for (const [subnet, bits] of [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast
] as const) {
  blocked.addSubnet(subnet, bits, "ipv4");
}
for (const [subnet, bits] of [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["100::", 64], // discard
  ["2001:db8::", 32], // documentation
  ["fc00::", 7], // unique local (fd00::/8, AWS metadata fd00:ec2::254)
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
] as const) {
  blocked.addSubnet(subnet, bits, "ipv6");
}

/** The eight 16-bit groups of an IPv6 address (undefined when it is not one). */
function hextets(ip: string): number[] | undefined {
  let s = ip.toLowerCase();
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct); // a zone id
  // a dotted IPv4 tail (::ffff:1.2.3.4) becomes two groups
  const dotted = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (dotted) {
    const v4 = dotted[2]!.split(".").map(Number);
    if (v4.some((n) => n > 255)) return undefined;
    s = `${dotted[1]}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const part = (h: string): number[] => (h === "" ? [] : h.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0 || (halves.length === 1 && head.length !== 8)) return undefined;
  const out = [...head, ...new Array<number>(fill).fill(0), ...tail];
  return out.length === 8 && out.every((n) => Number.isInteger(n)) ? out : undefined;
}

const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * The IPv4 address an IPv6 one carries and that routes to it: IPv4-mapped (::ffff:a.b.c.d),
 * IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
 */
export function embeddedIPv4(ip: string): string | undefined {
  const h = hextets(ip);
  if (!h) return undefined;
  const zeros = (from: number, to: number): boolean => h.slice(from, to).every((n) => n === 0);
  if (zeros(0, 5) && h[5] === 0xffff) return v4(h[6]!, h[7]!);
  if (zeros(0, 6) && (h[6] !== 0 || h[7]! > 1)) return v4(h[6]!, h[7]!);
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) return v4(h[6]!, h[7]!);
  if (h[0] === 0x2002) return v4(h[1]!, h[2]!);
  return undefined;
}

/** Is `ip` (an IPv4 or IPv6 address, as text) one a webhook must never be sent to? */
export function isForbiddenAddress(ip: string): boolean {
  const family = net.isIP(ip.split("%")[0]!);
  if (family === 4) return blocked.check(ip, "ipv4");
  if (family !== 6) return true; // not an address at all: refuse
  const inner = embeddedIPv4(ip);
  if (inner !== undefined) return blocked.check(inner, "ipv4");
  return blocked.check(ip.split("%")[0]!, "ipv6");
}

export class DestinationError extends Error {
  override readonly name = "DestinationError";
  constructor(
    readonly code: "invalid_url" | "forbidden_destination" | "unresolvable",
    message: string,
  ) {
    super(message);
  }
}

/** A webhook URL as the API accepts it: http(s), a host, no credentials, ≤ 2048 characters. */
export function checkWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new DestinationError("invalid_url", "the url is not an absolute URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new DestinationError("invalid_url", "the url must be http:// or https://");
  if (u.username || u.password) throw new DestinationError("invalid_url", "the url must not carry credentials (sign with the secret instead)");
  if (!u.hostname) throw new DestinationError("invalid_url", "the url has no host");
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!allowPrivate && (net.isIP(host) ? isForbiddenAddress(host) : /^(localhost|.*\.localhost)$/i.test(host))) {
    throw new DestinationError("forbidden_destination", "the url points at a loopback, private, link-local or metadata address");
  }
  return u;
}

export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;
const systemLookup: Lookup = (host) => dnsLookup(host, { all: true, verbatim: true });

/**
 * Resolve `url`'s host once and check every address it has; resolves to the one to
 * connect to. Throws DestinationError when it resolves to nothing or to a forbidden address.
 */
export async function resolveDestination(url: URL, opts: { allowPrivate: boolean; lookup?: Lookup }): Promise<{ address: string; family: 4 | 6 }> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: { address: string; family: number }[];
  if (net.isIP(host)) addresses = [{ address: host, family: net.isIP(host) }];
  else {
    try {
      addresses = await (opts.lookup ?? systemLookup)(host);
    } catch {
      throw new DestinationError("unresolvable", "the receiver's host name did not resolve");
    }
  }
  if (addresses.length === 0) throw new DestinationError("unresolvable", "the receiver's host name did not resolve");
  if (!opts.allowPrivate && addresses.some((a) => isForbiddenAddress(a.address))) {
    throw new DestinationError("forbidden_destination", "the receiver's host resolves to a loopback, private, link-local or metadata address");
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}
