/**
 * The web app end to end in a real browser: Debian's Chromium driven by playwright-core
 * (headless), against the real stack this test run started: `trackscribe serve` with shadow
 * mode on, the Conductor workers and the BullMQ workers as processes, Postgres, the S3
 * server and Redis. A person signs in with an API key (a wrong one first), uploads the
 * 3-track fixture through the form, watches the steps, reads the transcript with all three
 * names, clicks a word (the audio element's currentTime moves to it, the word is
 * highlighted), downloads the VTT, opens the shadow view ("matched"), checks the page at
 * 375 px, and deletes the recording. No console errors once signed in.
 *
 * Screenshots of the list, a running and a finished recording are written to
 * WEB_SCREENSHOTS_DIR (`npm run web:screenshots` → docs/img), else under .work/.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { chromium, type Browser, type Page } from "playwright-core";
import { freePort, waitUntil } from "../../scripts/lib.ts";
import { registerWorkflowDefinitions } from "../api/harness.ts";
import { createBullmqRedis } from "../../workers/bullmq/engine.ts";
import { dropPrefix } from "../../workers/bullmq/queues.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const STEP_MS = 10 * 60_000;

interface Proc {
  name: string;
  child: ChildProcess;
  tail: string[];
}

function start(name: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  const keep = (b: Buffer): void => {
    tail.push(...b.toString().split("\n").filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 40));
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return { name, child, tail };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.child.once("exit", () => r()));
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

function ensureWebBuild(): void {
  if (existsSync(path.join(root, "web", "dist", "index.html"))) return;
  const r = spawnSync(process.execPath, [path.join(root, "node_modules", "vite", "bin", "vite.js"), "build", "--config", "web/vite.config.ts"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, `npm run build:web failed:\n${r.stdout}\n${r.stderr}`);
}

test("the web app in Chromium: sign in, upload 3 tracks, follow, read, seek, download, compare engines, delete", async (t) => {
  assert.ok(process.env.CONDUCTOR_SERVER_URL && process.env.DATABASE_URL && process.env.S3_ENDPOINT, "run through npm test (services started)");
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium; npm test's preflight installs it)`);
  ensureWebBuild();
  const shots = path.resolve(root, process.env.WEB_SCREENSHOTS_DIR ?? path.join(".work", "web-e2e"));
  mkdirSync(shots, { recursive: true });

  const { buildFixtures } = await import("../../scripts/build-fixtures.ts");
  const fixtureDir = path.join(root, "test", "fixtures", "out");
  const { manifestPath } = await buildFixtures(fixtureDir);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { tracks: { path: string; participant: string; offset_seconds: number }[] };
  assert.equal(manifest.tracks.length, 3);

  // this test's own database schema and BullMQ prefix, removed at the end
  const suffix = randomBytes(4).toString("hex");
  const schema = `web_e2e_${suffix}`;
  const prefix = `tsweb-${suffix}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const workDir = path.join(root, ".work", `web-e2e-${suffix}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: "127.0.0.1",
    API_TOKEN: randomBytes(24).toString("hex"),
    DATABASE_SCHEMA: schema,
    SHADOW_MODE: "bullmq",
    SHADOW_SAMPLE_RATE: "1",
    BULLMQ_PREFIX: prefix,
    WORK_DIR: workDir,
    LOG_LEVEL: "warn",
  };
  const procs: Proc[] = [];
  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close().catch(() => undefined);
    await Promise.all(procs.map(stop));
    const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pool.end();
    const redis = createBullmqRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    await dropPrefix(redis, prefix).catch(() => 0);
    await redis.quit();
  });
  const logs = (): string => procs.map((p) => `--- ${p.name}\n${p.tail.join("\n")}`).join("\n");

  // the workflow is defined before the first upload (the worker host also registers it, but later)
  await registerWorkflowDefinitions(process.env.CONDUCTOR_SERVER_URL!);
  procs.push(start("api", ["serve"], env));
  await waitUntil(async () => (await fetch(`${base}/readyz`)).ok, { timeoutMs: 240_000, what: "the API (/readyz)" });
  procs.push(start("conductor workers", ["workers", "--engine", "conductor"], { ...env, WORK_DIR: path.join(workDir, "cw") }));
  procs.push(start("bullmq workers", ["workers", "--engine", "bullmq"], { ...env, WORK_DIR: path.join(workDir, "bw") }));
  const keys = spawnSync(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), "keys", "create", "--name", "web-e2e", "--json"], { cwd: root, env, encoding: "utf8" });
  assert.equal(keys.status, 0, keys.stderr);
  const apiKey = (JSON.parse(keys.stdout) as { key: string }).key;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page: Page = await context.newPage();
  page.setDefaultTimeout(30_000);
  let watching = false;
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (watching && m.type() === "error") consoleErrors.push(`${m.text()} @ ${m.location().url}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));

  // ---- sign in: a wrong key is refused with a clear message, the right one is kept for the tab
  await page.goto(`${base}/`);
  await page.getByLabel("API key").fill("tsk_not-a-key-0000000000000000000000000000000");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "not accepted" }).waitFor();
  assert.doesNotMatch(page.url(), /tsk_/, "the key is never in the URL");
  await page.getByLabel("API key").fill(apiKey);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Recordings" }).waitFor();
  watching = true;
  await page.getByText("No recordings yet.").waitFor();
  assert.ok(!page.url().includes(apiKey));

  // ---- upload the fixture through the form: names default from the file names, offsets typed
  await page.getByRole("link", { name: "New recording" }).first().click();
  await page.locator('input[type="file"]').setInputFiles(manifest.tracks.map((tr) => path.join(fixtureDir, tr.path)));
  for (const [i, tr] of manifest.tracks.entries()) {
    assert.equal(await page.locator(`input[name="tracks.${i}.participant"]`).inputValue(), tr.participant, `participant ${i} from its file name`);
    await page.locator(`input[name="tracks.${i}.offset_seconds"]`).fill(String(tr.offset_seconds));
  }
  // the form's own check, next to the field: two tracks with one name
  await page.locator('input[name="tracks.1.participant"]').fill("alice");
  await page.getByRole("button", { name: "Upload and transcribe" }).click();
  await page.getByText("the same name as track 1").waitFor();
  assert.equal(await page.locator('input[name="tracks.1.participant"]').getAttribute("aria-invalid"), "true");
  await page.locator('input[name="tracks.1.participant"]').fill(manifest.tracks[1]!.participant);
  await page.getByRole("button", { name: "Upload and transcribe" }).click();
  try {
    await page.waitForURL(/\/recordings\/[0-9a-f-]{36}$/, { timeout: 120_000, waitUntil: "commit" });
  } catch (err) {
    throw new Error(`the upload did not lead to the recording's page: ${(err as Error).message}\n${await page.locator("main").innerText()}\n${logs()}`);
  }
  const id = page.url().split("/").pop()!;

  // ---- while it runs: steps progress from the event stream
  await page.locator('.step[data-step="prepare_track"] .run[data-status="succeeded"]').first().waitFor({ timeout: STEP_MS });
  assert.ok((await page.locator(".step").count()) >= 5, "the pipeline's steps are listed");
  assert.match(await page.locator('.step[data-step="plan_tracks"]').innerText(), /succeeded/);
  await page.screenshot({ path: path.join(shots, "recording-running.png") });

  // ---- when done: title, transcript with all three names
  try {
    await page.getByRole("heading", { name: "Transcript" }).waitFor({ timeout: STEP_MS });
  } catch (err) {
    throw new Error(`the recording did not complete in the page: ${(err as Error).message}\n${await page.locator("main").innerText()}\n${logs()}`);
  }
  const speakers = await page.locator(".transcript .speaker").allInnerTexts();
  for (const tr of manifest.tracks) assert.ok(speakers.includes(tr.participant), `${tr.participant} has a turn: ${speakers.join(", ")}`);
  const view = (await (await fetch(`${base}/v1/recordings/${id}`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { status: string; result: { title: string } };
  assert.equal(view.status, "completed");
  await page.getByRole("heading", { name: view.result.title, level: 1 }).waitFor();

  // ---- the audio (a Blob URL fetched with the key) and seeking by clicking a word
  const audio = page.locator("audio");
  // (expressions as text: they run in the page, whose DOM types this Node tsconfig lacks)
  await page.waitForFunction(`(document.querySelector("audio")?.readyState ?? 0) >= 1`, undefined, { timeout: 60_000 });
  assert.match((await audio.getAttribute("src")) ?? "", /^blob:/);
  await page.locator("canvas.waveform").waitFor();
  const words = page.locator(".transcript .word");
  const n = await words.count();
  assert.ok(n > 10, `words shown: ${n}`);
  const target = words.nth(Math.floor(n / 2));
  const wordStart = Number(await target.getAttribute("data-start"));
  assert.ok(wordStart > 0);
  await target.click();
  await page.waitForFunction(`Math.abs((document.querySelector("audio")?.currentTime ?? -1) - ${wordStart}) < 0.05`, undefined, { timeout: 10_000 });
  assert.equal(await target.getAttribute("aria-current"), "true", "the word at the playhead is highlighted");
  assert.equal(await page.locator(".transcript .word.active").count(), 1);
  await page.screenshot({ path: path.join(shots, "recording-done.png") });

  // ---- the VTT download: the same file the API renders, first cue with a speaker
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "WebVTT" }).click()]);
  const vtt = readFileSync((await download.path())!, "utf8");
  assert.match(vtt, /^WEBVTT\n/);
  const firstCue = /\n\n(?:\d+\n)?(\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3})\n<v ([^>]+)>/.exec(vtt);
  assert.ok(firstCue, `a first cue: ${vtt.slice(0, 300)}`);
  assert.ok(manifest.tracks.some((tr) => tr.participant === firstCue[2]), `the first cue's voice is a participant: ${firstCue[2]}`);
  const apiVtt = await (await fetch(`${base}/v1/recordings/${id}/transcript?format=vtt`, { headers: { authorization: `Bearer ${apiKey}` } })).text();
  assert.equal(vtt, apiVtt);

  // ---- the shadow view: Conductor and BullMQ matched
  await page.getByRole("link", { name: "Conductor vs BullMQ comparison" }).click();
  await page.getByRole("heading", { name: "Conductor vs BullMQ" }).waitFor();
  await page.locator(".shadow > p .badge.matched").waitFor({ timeout: STEP_MS });
  assert.ok((await page.locator("tbody .badge.matched").count()) > 0, "checks listed as matched");
  assert.equal(await page.locator("tbody .badge.mismatched").count(), 0);

  // ---- the list: the finished recording with its title, duration and participants
  await page.getByRole("link", { name: "Recordings", exact: true }).click();
  const row = page.locator(`tr[data-id="${id}"]`);
  await row.getByRole("link", { name: view.result.title }).waitFor();
  assert.match(await row.innerText(), /completed/);
  assert.match(await row.innerText(), /Alice, Bob, Carol/);
  await page.screenshot({ path: path.join(shots, "recordings.png") });

  // ---- 375 px wide: nothing wider than the screen
  await page.setViewportSize({ width: 375, height: 740 });
  await row.getByRole("link", { name: view.result.title }).click();
  await page.getByRole("heading", { name: "Transcript" }).waitFor();
  const overflow = (await page.evaluate(`document.documentElement.scrollWidth - window.innerWidth`)) as number;
  assert.ok(overflow <= 0, `the recording page fits 375 px (overflows by ${overflow} px)`);

  // ---- delete, with a confirmation
  await page.getByRole("button", { name: "Delete recording" }).click();
  await page.getByRole("button", { name: "Yes, delete it" }).click();
  await page.getByText("No recordings yet.").waitFor();
  assert.equal((await fetch(`${base}/v1/recordings/${id}`, { headers: { authorization: `Bearer ${apiKey}` } })).status, 404);

  assert.deepEqual(consoleErrors, [], "no console errors in the page");
});
