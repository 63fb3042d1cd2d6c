#!/usr/bin/env node
// A stand-in for pocketsphinx_batch that speaks the same protocol as the decoder pool uses
// (control lines from the -ctl pipe, CTM written before "<utt> done ----" on stderr), so the
// pool's failure handling can be driven on purpose. The segment's bytes say what to do:
// "CRASH" exits with code 3, "HANG" never answers, "SLEEP<ms>:" takes that long, anything
// else yields one word per byte group. The real decoder is exercised by pocketsphinx.test.ts.
import { appendFileSync, constants, openSync, readFileSync } from "node:fs";
import net from "node:net";
import readline from "node:readline";

const arg = (name) => process.argv[process.argv.indexOf(name) + 1];
const ctl = arg("-ctl");
const ctm = arg("-ctm");
const cepdir = arg("-cepdir");
const ext = arg("-cepext");
process.stderr.write(`INFO: fake decoder ${process.pid} ready\n`);
// read the pipe through libuv's non-blocking pipe handle: a blocking fs read would keep the
// process from exiting when it is told to crash
const rl = readline.createInterface({ input: new net.Socket({ fd: openSync(ctl, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false }) });
for await (const line of rl) {
  const [file, , , utt] = line.trim().split(/\s+/);
  const bytes = readFileSync(`${cepdir}/${file}${ext}`);
  const text = bytes.toString("latin1");
  process.stderr.write(`INFO: batch.c(729): Decoding '${utt}'\n`);
  if (text.startsWith("CRASH")) {
    process.stderr.write("FATAL: fake decoder told to crash\n");
    process.exit(3);
  }
  if (text.startsWith("HANG")) await new Promise(() => setInterval(() => {}, 1000));
  if (text.startsWith("SLOW")) await new Promise((r) => setTimeout(r, 300));
  const sleep = /^SLEEP(\d+):/.exec(text);
  if (sleep) await new Promise((r) => setTimeout(r, Number(sleep[1])));
  appendFileSync(ctm, `${utt} 1 0.10 0.20 w${bytes.length} 0.900\n${utt} 1 0.40 0.20 pid${process.pid} 0.800\n`);
  process.stderr.write(`${utt} done --------------------------------------\n`);
}
