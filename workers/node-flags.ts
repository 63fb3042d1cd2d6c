/**
 * The V8 flags trackscribe's own Node processes run with: worker hosts and step children
 * (forked with them here), and `trackscribe` itself (the bin's shebang and the npm script
 * carry the same flags; test/scripts/node-flags.test.ts keeps them in step).
 *
 * `--max-semi-space-size=4`: V8 sizes its young generation by the allocation rate, up to
 * 16 MB a semi-space (48 MB of RSS with the copy reserve), and a step streaming three hours
 * of audio allocates at a high rate (every chunk a fresh buffer, dead at once): left alone,
 * a step child's peak grew from 170 MB at 10 minutes to 195 MB at 3 hours and the engine
 * host's from 250 to 279 MB, though neither kept anything more. Pinned to 4 MB, measured
 * side by side (`bench:long --memory-only --tracks 10`, 2 cores): step child 148 → 153 MB,
 * engine host 205 → 215 MB, worker host 193 → 193 MB, and the 3-hour run's wall time within
 * 2 % (garbage that dies young costs a scavenge nothing). The API image runs with 1 MB
 * (Dockerfile; docs/api.md measured it for uploads); its forks take these.
 */
export const NODE_MEMORY_FLAGS: readonly string[] = ["--max-semi-space-size=4"];
