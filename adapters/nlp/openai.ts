/**
 * Text model on an OpenAI-compatible chat endpoint (`POST {LLM_URL}/v1/chat/completions`).
 * The model is asked for one JSON object; its answer is parsed with zod and, when it does
 * not parse or does not fit the transcript, the problem is sent back and the question
 * asked again, up to `maxAttempts` requests in all. Transport failures (network errors,
 * HTTP 429 and 5xx) use the same attempt budget with a short back-off; other HTTP errors
 * fail at once. Topic boundaries are chosen by the model as segment indexes, so every
 * topic's words, timestamp and duration still come from the transcript itself.
 */
import type { Logger } from "pino";
import { z } from "zod/v4";
import type { ActionItem, Topic, Word } from "../../pipeline/contracts/index.ts";
import type { TextModel } from "../../pipeline/ports.ts";
import { createLanguageTools, type LanguageTools } from "../../pipeline/nlp/language.ts";
import { EMPTY_SUMMARY, EMPTY_TITLE } from "../../pipeline/nlp/offline.ts";
import { orderWords, segmentWords, type Segment, type SegmentOptions } from "../../pipeline/nlp/segments.ts";

export class LlmError extends Error {
  override readonly name = "LlmError";
  constructor(
    message: string,
    readonly attempts: number,
    readonly problems: string[],
  ) {
    super(message);
  }
}

export interface ChatTextModelOptions {
  /** base URL; `/v1/chat/completions` is appended (a trailing `/v1` is tolerated) */
  url: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
  maxAttempts?: number;
  /** first back-off after a transport failure, doubled each time (default 250 ms) */
  backoffMs?: number;
  segments?: SegmentOptions;
  log?: Logger;
  fetch?: typeof fetch;
}

const ChatCompletion = z.object({
  choices: z
    .array(z.object({ message: z.object({ content: z.string().nullable().optional() }) }))
    .min(1, "the answer has no choices"),
});

type Message = { role: "system" | "user" | "assistant"; content: string };

const describe = (e: z.ZodError): string =>
  e.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");

/** The JSON object inside a chat answer: tolerates ```json fences and prose around it. */
export function extractJsonObject(content: string): unknown {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(content);
  const body = (fenced ? fenced[1]! : content).trim();
  try {
    return JSON.parse(body);
  } catch (err) {
    const first = body.indexOf("{");
    const last = body.lastIndexOf("}");
    if (first >= 0 && last > first) return JSON.parse(body.slice(first, last + 1));
    throw err;
  }
}

const fmt = (s: number): string => {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
};

export function createChatTextModel(options: ChatTextModelOptions): TextModel {
  const base = options.url.replace(/\/+$/, "").replace(/\/v1$/, "");
  const endpoint = `${base}/v1/chat/completions`;
  const maxAttempts = options.maxAttempts ?? 3;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const backoffMs = options.backoffMs ?? 250;
  const doFetch = options.fetch ?? fetch;
  const languages = new Map<string, LanguageTools>();
  const lang = (code: string): LanguageTools => {
    let l = languages.get(code);
    if (!l) languages.set(code, (l = createLanguageTools(code)));
    return l;
  };

  async function askJson<S extends z.ZodType>(what: string, system: string, user: string, schema: S): Promise<z.infer<S>> {
    const messages: Message[] = [
      { role: "system", content: system },
      { role: "user", content: user },
    ];
    const problems: string[] = [];
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let res: Response;
      try {
        res = await doFetch(endpoint, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
          },
          body: JSON.stringify({ model: options.model, messages, temperature: 0, response_format: { type: "json_object" } }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        problems.push(`request failed: ${err instanceof Error ? err.message : String(err)}`);
        await sleep(backoffMs * 2 ** (attempt - 1));
        continue;
      }
      const text = await res.text();
      if (!res.ok) {
        const problem = `HTTP ${res.status}: ${text.slice(0, 300)}`;
        problems.push(problem);
        if (res.status === 429 || res.status >= 500) {
          await sleep(backoffMs * 2 ** (attempt - 1));
          continue;
        }
        throw new LlmError(`${what}: chat endpoint ${endpoint} refused the request (${problem})`, attempt, problems);
      }
      let content: string;
      try {
        const completion = ChatCompletion.parse(JSON.parse(text));
        content = completion.choices[0]!.message.content ?? "";
      } catch (err) {
        problems.push(`not an OpenAI chat completion: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      let problem: string;
      try {
        const parsed = schema.safeParse(extractJsonObject(content));
        if (parsed.success) {
          options.log?.debug({ what, attempt }, "chat answer parsed");
          return parsed.data;
        }
        problem = `the JSON does not match the expected shape: ${describe(parsed.error)}`;
      } catch (err) {
        problem = `the answer is not valid JSON: ${err instanceof Error ? err.message : String(err)}`;
      }
      problems.push(problem);
      options.log?.warn({ what, attempt, problem }, "chat answer rejected, asking again");
      messages.push({ role: "assistant", content });
      messages.push({ role: "user", content: `${problem}. Answer again with only the JSON object described above.` });
    }
    throw new LlmError(
      `${what}: no valid answer from model ${options.model} at ${endpoint} after ${maxAttempts} attempt(s); last problem: ${problems[problems.length - 1] ?? "unknown"}`,
      maxAttempts,
      problems,
    );
  }

  const transcript = (segments: readonly Segment[]): string =>
    segments.map((s) => `#${s.index} [${fmt(s.start)}] S${s.speaker}: ${s.words.map((w) => w.text).join(" ")}`).join("\n");

  const topicList = (topics: readonly Topic[]): string =>
    topics.map((t) => `- [${fmt(t.timestamp)}, ${Math.round(t.duration)} s] ${t.title}: ${t.summary}`).join("\n");

  return {
    name: "openai",

    async detectTopics(words: Word[], language: string): Promise<Topic[]> {
      if (words.length === 0) return [];
      const segments = segmentWords(words, lang(language), options.segments);
      const n = segments.length;
      const Answer = z.object({
        topics: z
          .array(
            z.object({
              start_segment: z.number().int().min(0).max(n - 1, `start_segment must be at most ${n - 1}`),
              title: z.string().trim().min(1).max(200),
              summary: z.string().trim().max(4000),
            }),
          )
          .min(1, "at least one topic is required")
          .superRefine((ts, ctx) => {
            if (ts[0] && ts[0].start_segment !== 0) ctx.addIssue({ code: "custom", message: "the first topic must start at segment 0" });
            for (let i = 1; i < ts.length; i++) {
              if (ts[i]!.start_segment <= ts[i - 1]!.start_segment) {
                ctx.addIssue({ code: "custom", path: [i, "start_segment"], message: "start_segment values must strictly increase" });
              }
            }
          }),
      });
      const answer = await askJson(
        "detect_topics",
        "You split meeting transcripts into topics. Answer with one JSON object and nothing else.",
        [
          `The meeting transcript below has ${n} numbered segments, one per line: #index [mm:ss] speaker: text.`,
          "Split it into consecutive topics (a few minutes each; one topic if the meeting has one subject).",
          'Answer {"topics":[{"start_segment":<index of the topic\'s first segment>,"title":"<3 to 8 words>","summary":"<1 or 2 sentences>"}]}.',
          "The first topic starts at segment 0 and start_segment values strictly increase.",
          `Write titles and summaries in language '${language}'.`,
          "",
          transcript(segments),
        ].join("\n"),
        Answer,
      );
      return answer.topics.map((t, i) => {
        const group = segments.slice(t.start_segment, answer.topics[i + 1]?.start_segment ?? n);
        const start = group[0]!.start;
        const end = Math.max(...group.map((s) => s.end));
        return {
          id: `topic-${i + 1}`,
          title: t.title,
          summary: t.summary,
          timestamp: start,
          duration: Math.max(0, Math.round((end - start) * 1000) / 1000),
          words: orderWords(group.flatMap((s) => s.words)),
        };
      });
    },

    async generateTitle(topics: Topic[], language: string): Promise<string> {
      if (topics.length === 0 || topics.every((t) => t.words.length === 0)) return EMPTY_TITLE;
      const answer = await askJson(
        "generate_title",
        "You name meetings. Answer with one JSON object and nothing else.",
        [
          "These are the topics of a meeting, in order ([start, length] title: summary):",
          topicList(topics),
          "",
          `Answer {"title":"<a title for the whole meeting, at most 10 words, in language '${language}'>"}.`,
        ].join("\n"),
        z.object({ title: z.string().trim().min(1, "title must not be empty").max(200) }),
      );
      return answer.title;
    },

    async generateSummary(topics: Topic[], language: string): Promise<{ short_summary: string; long_summary: string }> {
      if (topics.length === 0 || topics.every((t) => t.words.length === 0)) {
        return { short_summary: EMPTY_SUMMARY, long_summary: EMPTY_SUMMARY };
      }
      const segments = topics.map((t) => segmentWords(t.words, lang(language), options.segments));
      const answer = await askJson(
        "generate_summary",
        "You summarize meetings. Answer with one JSON object and nothing else.",
        [
          "These are the topics of a meeting, in order ([start, length] title: summary):",
          topicList(topics),
          "",
          "Transcript by topic:",
          ...topics.map((t, i) => `## ${t.title}\n${transcript(segments[i]!)}`),
          "",
          `Answer {"short_summary":"<1 or 2 sentences>","long_summary":"<one short paragraph per topic>"} in language '${language}'.`,
        ].join("\n"),
        z.object({
          short_summary: z.string().trim().min(1, "short_summary must not be empty"),
          long_summary: z.string().trim().min(1, "long_summary must not be empty"),
        }),
      );
      return answer;
    },

    async extractActionItems(words: Word[], language: string): Promise<ActionItem[]> {
      if (words.length === 0) return [];
      const segments = segmentWords(words, lang(language), options.segments);
      const n = segments.length;
      const answer = await askJson(
        "extract_action_items",
        "You list the action items of meetings. Answer with one JSON object and nothing else.",
        [
          `The meeting transcript below has ${n} numbered segments, one per line: #index [mm:ss] speaker: text.`,
          "List every action item: something a participant commits to do, is asked to do, or proposes the group does (often with a deadline).",
          'Answer {"action_items":[{"segment":<index of the segment where it is said>,"text":"<the action, one short sentence>"}]}, in time order;',
          'answer {"action_items":[]} when there is none. Questions, past events and opinions are not action items.',
          `Write the text in language '${language}'.`,
          "",
          transcript(segments),
        ].join("\n"),
        z.object({
          action_items: z.array(
            z.object({
              segment: z.number().int().min(0).max(n - 1, `segment must be at most ${n - 1}`),
              text: z.string().trim().min(1, "text must not be empty").max(500),
            }),
          ),
        }),
      );
      // owner and time come from the transcript: the segment's speaker and first word
      return answer.action_items
        .map((a) => ({ text: a.text, speaker: segments[a.segment]!.speaker, start: segments[a.segment]!.start }))
        .sort((x, y) => x.start - y.start || x.speaker - y.speaker);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
