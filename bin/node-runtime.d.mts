/** Types of node-runtime.mjs (plain JavaScript so it loads on any Node before tsx does). */
export declare function minimumVersion(range: string | undefined): [number, number, number];
export declare function isOlder(version: string, min: readonly number[]): boolean;
export declare function pinnedNode(dir?: string, platform?: string, arch?: string): string | undefined;
export declare function ensureSupportedNode(opts?: {
  root?: string;
  env?: NodeJS.ProcessEnv;
  version?: string;
  argv?: string[];
  execArgv?: string[];
}): Promise<void>;
