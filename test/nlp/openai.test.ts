import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { loadConfig } from "../../pipeline/config.ts";
import { ActionItem, DetectTopicsOutput } from "../../pipeline/contracts/index.ts";
import { z } from "zod/v4";
import { createChatTextModel, createTextModel, LlmError, EMPTY_TITLE } from "../../adapters/nlp/index.ts";
import { BUDGET, HIRING, timedWords } from "./synthetic.ts";

/**
 * A tiny OpenAI-compatible chat server: each request takes the next scripted answer
 * (a function of the request) and is recorded for the assertions.
 */
interface ChatRequest {
  path: string;
  headers: IncomingMessage["headers"];
  body: { model: string; messages: { role: string; content: string }[]; response_format?: unknown };
}
type Answer = (req: ChatRequest) => { status?: number; content?: string; raw?: string };

const requests: ChatRequest[] = [];
let script: Answer[] = [];
let baseUrl = "";
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const r: ChatRequest = { path: req.url ?? "", headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
    requests.push(r);
    const answer = script.shift();
    if (!answer) {
      res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: "no scripted answer" }));
      return;
    }
    const a = answer(r);
    const body =
      a.raw ??
      JSON.stringify({
        id: `chatcmpl-${requests.length}`,
        object: "chat.completion",
        model: r.body.model,
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: a.content ?? "" } }],
      });
    res.writeHead(a.status ?? 200, { "content-type": "application/json" }).end(body);
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function reset(answers: Answer[]): void {
  requests.length = 0;
  script = answers;
}

const segmentCount = (req: ChatRequest): number => Number(/has (\d+) numbered segments/.exec(req.body.messages[1]!.content)![1]);

const words = timedWords([...BUDGET, ...HIRING], { speakers: [0, 1] });
const ActionItems = z.array(ActionItem);

test("detect_topics: a malformed answer is retried with the problem, and the second answer is used", async () => {
  reset([
    () => ({ content: "Sure! Here are the topics: budget, then hiring." }),
    (req) => {
      const n = segmentCount(req);
      return {
        content: JSON.stringify({
          topics: [
            { start_segment: 0, title: "Quarterly budget", summary: "Budget cuts were discussed." },
            { start_segment: Math.floor(n / 2), title: "Support hiring", summary: "Candidates were reviewed." },
          ],
        }),
      };
    },
  ]);
  const model = createChatTextModel({ url: baseUrl, model: "test-model", apiKey: "sk-test", maxAttempts: 3, backoffMs: 1 });
  const topics = DetectTopicsOutput.parse({ topics: await model.detectTopics(words, "en") }).topics;
  assert.equal(requests.length, 2);
  assert.equal(requests[0]!.path, "/v1/chat/completions");
  assert.equal(requests[0]!.headers.authorization, "Bearer sk-test");
  assert.equal(requests[0]!.body.model, "test-model");
  assert.deepEqual(requests[0]!.body.response_format, { type: "json_object" });
  // the retry carries the rejected answer and says what was wrong with it
  const retry = requests[1]!.body.messages;
  assert.equal(retry.length, 4);
  assert.equal(retry[2]!.role, "assistant");
  assert.match(retry[3]!.content, /not valid JSON/);

  assert.deepEqual(topics.map((t) => [t.id, t.title]), [["topic-1", "Quarterly budget"], ["topic-2", "Support hiring"]]);
  // words, timestamps and durations come from the transcript, not from the model
  assert.deepEqual(topics.flatMap((t) => t.words), words);
  assert.equal(topics[0]!.timestamp, words[0]!.start);
  assert.equal(topics[1]!.timestamp, topics[1]!.words[0]!.start);
});

test("detect_topics: an answer that does not fit the transcript is rejected by the schema", async () => {
  reset([
    (req) => ({ content: JSON.stringify({ topics: [{ start_segment: 0, title: "A", summary: "" }, { start_segment: segmentCount(req) + 5, title: "B", summary: "" }] }) }),
    () => ({ content: "```json\n" + JSON.stringify({ topics: [{ start_segment: 0, title: "Everything", summary: "All of it." }] }) + "\n```" }),
  ]);
  const model = createChatTextModel({ url: `${baseUrl}/v1/`, model: "m", maxAttempts: 2, backoffMs: 1 });
  const topics = await model.detectTopics(words, "en");
  assert.equal(requests.length, 2);
  assert.match(requests[1]!.body.messages[3]!.content, /start_segment must be at most/);
  assert.equal(requests[0]!.headers.authorization, undefined);
  assert.equal(topics.length, 1);
  assert.equal(topics[0]!.words.length, words.length);
});

test("after the attempts are used up the error says so and names the last problem", async () => {
  reset([() => ({ content: "{not json" }), () => ({ content: JSON.stringify({ title: "" }) }), () => ({ content: "[]" })]);
  const model = createChatTextModel({ url: baseUrl, model: "m", maxAttempts: 3, backoffMs: 1 });
  const topics = [{ id: "topic-1", title: "Budget", summary: "About money.", timestamp: 0, duration: 10, words: words.slice(0, 5) }];
  await assert.rejects(model.generateTitle(topics, "en"), (err: unknown) => {
    assert.ok(err instanceof LlmError);
    assert.equal(err.attempts, 3);
    assert.equal(err.problems.length, 3);
    assert.match(err.message, /generate_title: no valid answer from model m .* after 3 attempt\(s\); last problem: the JSON does not match/);
    return true;
  });
  assert.equal(requests.length, 3);
});

test("server errors are retried, client errors are not", async () => {
  reset([() => ({ status: 503, raw: '{"error":"busy"}' }), () => ({ content: JSON.stringify({ short_summary: "Short.", long_summary: "Long." }) })]);
  const model = createChatTextModel({ url: baseUrl, model: "m", maxAttempts: 3, backoffMs: 1 });
  const topics = [{ id: "topic-1", title: "Budget", summary: "About money.", timestamp: 0, duration: 10, words: words.slice(0, 5) }];
  assert.deepEqual(await model.generateSummary(topics, "en"), { short_summary: "Short.", long_summary: "Long." });
  assert.equal(requests.length, 2);

  reset([() => ({ status: 401, raw: '{"error":"bad key"}' }), () => ({ content: JSON.stringify({ title: "never asked" }) })]);
  await assert.rejects(model.generateTitle(topics, "en"), /refused the request \(HTTP 401/);
  assert.equal(requests.length, 1);
});

test("createTextModel(config) picks the chat backend from TEXT_ENGINE and LLM_* variables", async () => {
  const config = loadConfig({ TEXT_ENGINE: "openai", LLM_URL: baseUrl, LLM_MODEL: "from-config", LLM_API_KEY: "k", LLM_MAX_ATTEMPTS: "2" });
  const model = createTextModel(config);
  assert.equal(model.name, "openai");
  reset([() => ({ content: JSON.stringify({ title: "Budget and hiring review" }) })]);
  const topics = [{ id: "topic-1", title: "Budget", summary: "About money.", timestamp: 0, duration: 10, words: words.slice(0, 5) }];
  assert.equal(await model.generateTitle(topics, "en"), "Budget and hiring review");
  assert.equal(requests[0]!.body.model, "from-config");
  assert.equal(requests[0]!.headers.authorization, "Bearer k");
  assert.equal(createTextModel(loadConfig({})).name, "offline");
  assert.throws(() => loadConfig({ TEXT_ENGINE: "openai" }), /LLM_URL/);
});

test("nothing to analyse: no request is made", async () => {
  reset([]);
  const model = createChatTextModel({ url: baseUrl, model: "m" });
  assert.deepEqual(await model.detectTopics([], "en"), []);
  assert.equal(await model.generateTitle([], "en"), EMPTY_TITLE);
  assert.equal(requests.length, 0);
});

test("extract_action_items: a JSON list checked with zod; an index outside the transcript is sent back; owner and time come from the segment", async () => {
  const meeting = timedWords(["we need to cut the travel budget", "i will send the numbers to finance by friday", "sounds good to me"], { speakers: [0, 1], pause: 1.5 });
  reset([
    (req) => ({ content: JSON.stringify({ action_items: [{ segment: segmentCount(req) + 3, text: "Send the numbers." }] }) }),
    () => ({ content: JSON.stringify({ action_items: [{ segment: 1, text: "Send the numbers to finance by Friday." }, { segment: 0, text: "Cut the travel budget." }] }) }),
  ]);
  const model = createChatTextModel({ url: baseUrl, model: "m", maxAttempts: 3, backoffMs: 1 });
  const items = ActionItems.parse(await model.extractActionItems(meeting, "en"));
  assert.equal(requests.length, 2);
  assert.match(requests[0]!.body.messages[1]!.content, /"action_items":\[\{"segment"/);
  assert.match(requests[0]!.body.messages[1]!.content, /#1 \[00:0\d\.\d\] S1: i will send the numbers to finance by friday/);
  assert.match(requests[1]!.body.messages[3]!.content, /segment must be at most 2/);
  const second = meeting.find((w) => w.speaker === 1)!;
  // in time order, each owned by its segment's speaker, starting at the segment's first word
  assert.deepEqual(items, [
    { text: "Cut the travel budget.", speaker: 0, start: 0 },
    { text: "Send the numbers to finance by Friday.", speaker: 1, start: second.start },
  ]);
});

test("extract_action_items: an empty list is an answer; no words, no request", async () => {
  reset([() => ({ content: '{"action_items": []}' })]);
  const model = createChatTextModel({ url: baseUrl, model: "m", maxAttempts: 1 });
  assert.deepEqual(await model.extractActionItems(words.slice(0, 10), "en"), []);
  assert.equal(requests.length, 1);
  reset([]);
  assert.deepEqual(await model.extractActionItems([], "en"), []);
  assert.equal(requests.length, 0);
  reset([() => ({ content: '{"action_items": [{"segment": 0, "text": ""}]}' })]);
  await assert.rejects(model.extractActionItems(words.slice(0, 10), "en"), /extract_action_items: no valid answer .* text must not be empty/);
});
