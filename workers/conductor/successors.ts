/**
 * Which of our task types can become ready when a task of a given type completes, read
 * from the workflow definition (workflows/multitrack_diarization.json). The worker host
 * uses it to poll for the next step as soon as Conductor has scheduled it (poll-hints.ts).
 *
 * A successor is `gated` when a JOIN stands between the two: Conductor completes a JOIN
 * on its own system-task poller, some tens of milliseconds after the last branch, so the
 * next step appears a little later than after a plain hand-off (where the decide runs
 * inside the task update, before the update returns).
 */
export interface Successor {
  type: string;
  gated: boolean;
}

interface WfTask {
  name?: string;
  type?: string;
  forkTasks?: WfTask[][];
  inputParameters?: Record<string, unknown>;
  dynamicForkTasksParam?: string;
}

export interface SuccessorMap {
  /** task types Conductor schedules when the workflow starts */
  start: Successor[];
  /** per task type, the types that may be scheduled when it completes */
  after: Map<string, Successor[]>;
}

const EXPR = /^\$\{([A-Za-z0-9_]+)\.output\.[^}]+\}$/;

/**
 * @param forkedBy for each task type that builds a dynamic fork list, the task type it forks
 *   (the list is data at run time; the host builds it from the same table)
 */
export function successorMap(workflow: { tasks: unknown[] }, forkedBy: Readonly<Record<string, string>>): SuccessorMap {
  const after = new Map<string, Successor[]>();
  /** one entry per type; reachable without a JOIN on some path means not gated */
  const dedupe = (list: Successor[]): Successor[] => {
    const out: Successor[] = [];
    for (const s of list) {
      const same = out.find((x) => x.type === s.type);
      if (!same) out.push({ ...s });
      else same.gated &&= s.gated;
    }
    return out;
  };
  const add = (type: string, next: Successor[]): void => void after.set(type, dedupe([...(after.get(type) ?? []), ...next]));
  const gate = (next: Successor[]): Successor[] => next.map((s) => ({ ...s, gated: true }));

  /** walks a task list back to front; returns the types that start when the list is entered */
  const walk = (list: WfTask[], next: Successor[]): Successor[] => {
    for (let i = list.length - 1; i >= 0; i--) {
      const t = list[i]!;
      switch (t.type) {
        case "SIMPLE":
          if (!t.name) throw new Error("a SIMPLE task without a name");
          add(t.name, next);
          next = [{ type: t.name, gated: false }];
          break;
        case "JOIN":
          next = gate(next);
          break;
        case "FORK_JOIN":
          next = dedupe((t.forkTasks ?? []).flatMap((branch) => (branch.length ? walk(branch, next) : next)));
          break;
        case "FORK_JOIN_DYNAMIC": {
          const expr = t.inputParameters?.[t.dynamicForkTasksParam ?? "dynamicTasks"];
          const producer = typeof expr === "string" ? EXPR.exec(expr)?.[1] : undefined;
          const forked = producer ? forkedBy[producer] : undefined;
          if (!forked) throw new Error(`dynamic fork ${t.name ?? "?"}: no known task type for its list ${String(expr)}`);
          add(forked, next);
          next = [{ type: forked, gated: false }];
          break;
        }
        default:
          // any other system task runs on Conductor's side: whatever follows it is gated
          next = gate(next);
      }
    }
    return next;
  };
  const start = walk(workflow.tasks as WfTask[], []);
  return { start, after };
}
