// `shoal scriptlet test [FILE]`: runs a placement scriptlet against the live cluster
// (POST /internal/placement/test through DIR/unix.socket) and prints the candidates,
// the decision and what the scriptlet logged. Nothing is placed. Without FILE, the
// configured `instances.placement.scriptlet` runs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { helpRequested } from "./commands.ts";
import { postLocal } from "./local-gateway.ts";

const HELP = `Usage: shoal scriptlet test [FILE] [--dir DIR] [--name NAME] [--project P]
                          [--config KEY=VALUE]... [--reason new|evacuation|relocation] [--target MEMBER]

Runs the placement scriptlet in FILE (or the configured instances.placement.scriptlet)
for an instance called NAME (default c1) with the given config, against the online
members of the cluster whose gateway socket is DIR/unix.socket (default .shoal), and
prints the member it would choose and its logs. Exit code 0 when it chose a member.
`;

interface Answer {
  target: string;
  error: string;
  logs: { level: string; message: string }[];
  candidates: string[];
}

export async function run(args: string[]): Promise<number> {
  if (helpRequested(args, HELP)) return 0;
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      dir: { type: "string", default: ".shoal" },
      name: { type: "string", default: "c1" },
      project: { type: "string", default: "default" },
      config: { type: "string", multiple: true, default: [] },
      reason: { type: "string", default: "new" },
      target: { type: "string" },
    },
  });
  if (positionals.length > 1) {
    process.stderr.write(HELP);
    return 2;
  }
  const config: Record<string, string> = {};
  for (const kv of values.config) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new Error(`--config wants KEY=VALUE, not '${kv}'`);
    config[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const body = {
    ...(positionals[0] ? { scriptlet: readFileSync(positionals[0], "utf8") } : {}),
    reason: values.reason,
    project: values.project,
    ...(values.target ? { target: values.target } : {}),
    instance: { name: values.name, config },
  };
  const reply = await postLocal(join(values.dir, "unix.socket"), "/internal/placement/test", body);
  if (reply.status !== 200) {
    process.stderr.write(`shoal scriptlet test: ${reply.json?.error ?? `HTTP ${reply.status}`}\n`);
    return 1;
  }
  const a = reply.json?.metadata as Answer;
  process.stdout.write(`candidates: ${a.candidates.join(", ") || "(none online)"}\n`);
  for (const l of a.logs) process.stdout.write(`log ${l.level}: ${l.message}\n`);
  if (a.error) {
    process.stdout.write(`error: ${a.error}\n`);
    return 1;
  }
  process.stdout.write(`decision: ${a.target}\n`);
  return 0;
}
