/**
 * Where a webhook may go (adapters/webhooks/destination.ts) and how it is signed
 * (adapters/webhooks/send.ts): every loopback, private, link-local, unique-local and
 * metadata address is refused, in any notation (IPv4-mapped IPv6 included) and behind a
 * host name that resolves there; the signature verifies with the documented recipe.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { checkWebhookUrl, DestinationError, embeddedIPv4, isForbiddenAddress, resolveDestination } from "../../adapters/webhooks/destination.ts";
import { clipBody, parseRetryAfter, signatureHeader } from "../../adapters/webhooks/send.ts";
import { deliveryBody, retryDelayMs } from "../../server/webhooks/dispatcher.ts";

test("forbidden addresses: loopback, private, link-local/metadata, unique-local, mapped and embedded forms", () => {
  const forbidden = [
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "fd00::1",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1",
    "fe80::1%eth0",
    "ff02::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "0:0:0:0:0:ffff:c0a8:0101",
    "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
    "2002:7f00:1::", // 6to4 of 127.0.0.1
    "not-an-address",
  ];
  for (const ip of forbidden) assert.equal(isForbiddenAddress(ip), true, `${ip} must be refused`);
  const allowed = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "172.15.255.255", "192.169.0.1", "2606:4700::6810:85e5", "::ffff:8.8.8.8", "2002:808:808::"];
  for (const ip of allowed) assert.equal(isForbiddenAddress(ip), false, `${ip} is public`);
  assert.equal(embeddedIPv4("::ffff:7f00:1"), "127.0.0.1");
  assert.equal(embeddedIPv4("2001:db8::1"), undefined);
});

test("resolution: a host name that resolves to loopback is refused; a public answer is pinned; WEBHOOK_ALLOW_PRIVATE lifts the check", async () => {
  // the system resolver: localhost is loopback on every machine
  await assert.rejects(resolveDestination(new URL("http://localhost:9/hook"), { allowPrivate: false }), (e: unknown) => e instanceof DestinationError && e.code === "forbidden_destination");
  // a name with one public and one private answer is refused (a DNS answer must not smuggle the private one in)
  const mixed = async () => [
    { address: "93.184.216.34", family: 4 },
    { address: "10.1.2.3", family: 4 },
  ];
  await assert.rejects(resolveDestination(new URL("https://example.test/"), { allowPrivate: false, lookup: mixed }), /private/);
  const pub = async () => [{ address: "93.184.216.34", family: 4 }];
  assert.deepEqual(await resolveDestination(new URL("https://example.test/"), { allowPrivate: false, lookup: pub }), { address: "93.184.216.34", family: 4 });
  assert.equal((await resolveDestination(new URL("http://localhost:9/"), { allowPrivate: true })).address.length > 0, true);
  await assert.rejects(resolveDestination(new URL("http://[::ffff:127.0.0.1]/"), { allowPrivate: false }), /loopback/);
  await assert.rejects(resolveDestination(new URL("http://nowhere.invalid/"), { allowPrivate: false, lookup: async () => [] }), (e: unknown) => (e as DestinationError).code === "unresolvable");
});

test("registration: only http(s), no credentials, literal private addresses and localhost refused unless allowed", () => {
  for (const [url, code] of [
    ["ftp://example.com/x", "invalid_url"],
    ["file:///etc/passwd", "invalid_url"],
    ["not a url", "invalid_url"],
    ["https://user:pw@example.com/", "invalid_url"],
    ["http://127.0.0.1:8080/", "forbidden_destination"],
    ["http://[::1]/", "forbidden_destination"],
    ["http://169.254.169.254/latest/meta-data", "forbidden_destination"],
    ["http://localhost/", "forbidden_destination"],
    ["http://api.localhost/", "forbidden_destination"],
  ] as const) {
    assert.throws(() => checkWebhookUrl(url, false), (e: unknown) => e instanceof DestinationError && e.code === code, url);
  }
  assert.equal(checkWebhookUrl("http://127.0.0.1:8080/", true).port, "8080");
  assert.equal(checkWebhookUrl("https://hooks.example.com/t", false).hostname, "hooks.example.com");
});

test("signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>, verified as docs/api.md shows", () => {
  const secret = "whsec_test_0123456789";
  const body = deliveryBody({ id: "d1", event: "recording.completed", created_at: new Date("2030-01-01T00:00:00Z"), data: { recording_id: "r1", status: "completed", title: "T" } }, "https://api.example.com/");
  const parsed = JSON.parse(body);
  assert.deepEqual(parsed.data.links.transcript, "https://api.example.com/v1/recordings/r1/transcript");
  const header = signatureHeader(secret, body, 1_900_000_000);
  assert.match(header, /^t=1900000000,v1=[0-9a-f]{64}$/);
  // the receiver's side, as documented
  const verify = (sig: string, raw: string, nowSeconds: number, toleranceSeconds = 300): boolean => {
    const parts = Object.fromEntries(sig.split(",").map((kv) => kv.split("=", 2) as [string, string]));
    const expected = createHmac("sha256", secret).update(`${parts.t}.${raw}`).digest();
    const given = Buffer.from(parts.v1 ?? "", "hex");
    return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(nowSeconds - Number(parts.t)) <= toleranceSeconds;
  };
  assert.equal(verify(header, body, 1_900_000_010), true);
  assert.equal(verify(header, body + " ", 1_900_000_010), false, "a changed body fails");
  assert.equal(verify(header, body, 1_900_001_000), false, "outside the tolerance window fails");
  assert.equal(verify(signatureHeader("other-secret-0000", body, 1_900_000_000), body, 1_900_000_000), false);
});

test("back-off grows 3.5× per attempt with ±20 % jitter, capped; Retry-After wins when longer; answers are cut to 1 KB", () => {
  const o = { retryBaseMs: 60_000, retryMaxMs: 12 * 3600_000 };
  assert.equal(retryDelayMs(1, { ...o, random: () => 0.5 }), 60_000);
  assert.equal(retryDelayMs(2, { ...o, random: () => 0.5 }), 210_000);
  assert.equal(retryDelayMs(1, { ...o, random: () => 0 }), 48_000);
  assert.equal(retryDelayMs(1, { ...o, random: () => 1 }), 72_000);
  assert.equal(retryDelayMs(20, { ...o, random: () => 1 }), 12 * 3600_000);
  assert.equal(retryDelayMs(1, { ...o, random: () => 0.5, retryAfterMs: 600_000 }), 600_000);
  let total = 0;
  for (let a = 1; a < 8; a++) total += retryDelayMs(a, { ...o, random: () => 0.5 });
  assert.ok(total > 20 * 3600_000 && total < 30 * 3600_000, `8 attempts span about a day (${total / 3600_000} h)`);
  assert.equal(parseRetryAfter("120"), 120_000);
  assert.equal(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 1)).toUTCString(), Date.UTC(2030, 0, 1)), 60_000);
  assert.equal(parseRetryAfter("soon"), null);
  const clipped = clipBody(Buffer.from("é".repeat(1000)));
  assert.ok(Buffer.byteLength(clipped) <= 1024 && clipped.length === 512);
  assert.equal(clipBody(Buffer.from("a\u0000b")), "ab");
});
