#!/usr/bin/env node
// The `shoal` command: one entry point for every service. `shoal --help` lists the
// sub-commands (services/api/src/cli/commands.ts).
import { findCommand, usage } from "./cli/commands.ts";

const argv = process.argv.slice(2);
if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
  process.stdout.write(usage());
  process.exit(argv.length === 0 ? 2 : 0);
}
const found = findCommand(argv);
if (!found) {
  process.stderr.write(`shoal: unknown command '${argv[0]}'\n\n${usage()}`);
  process.exit(2);
}
try {
  const mod = await found.command.load();
  const code = await mod.run(found.rest);
  if (code !== undefined) process.exit(code);
} catch (e) {
  process.stderr.write(`shoal ${found.command.name}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
