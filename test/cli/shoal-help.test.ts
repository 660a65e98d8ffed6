// `shoal` usage: --help lists every registered sub-command; an unknown one is refused
// with the usage text; the command registry finds multi-word names.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { COMMANDS, findCommand, type Command } from "../../services/api/src/cli/commands.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const shoal = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "services/api/src/shoal.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });

test("shoal --help lists every sub-command", () => {
  const r = shoal("--help");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: shoal <command>/);
  for (const c of COMMANDS) assert.ok(r.stdout.includes(`shoal ${c.name} ${c.args}`), c.name);
});

test("an unknown sub-command is an error with the usage text", () => {
  const r = shoal("frobnicate");
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^shoal: unknown command 'frobnicate'/);
  assert.match(r.stderr, /Usage: shoal <command>/);
});

test("shoal up --help and shoal db --help describe their options without starting anything", () => {
  for (const name of ["up", "db", "gateway"]) {
    const r = shoal(name, "--help");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: shoal ${name} `));
  }
});

test("the registry matches the longest multi-word name", () => {
  const load = async () => ({ run: async () => 0 });
  const cmds: Command[] = [
    { name: "trust", args: "", summary: "", load },
    { name: "trust add", args: "NAME", summary: "", load },
  ];
  assert.equal(findCommand(["trust", "add", "bob"], cmds)?.command.name, "trust add");
  assert.deepEqual(findCommand(["trust", "add", "bob"], cmds)?.rest, ["bob"]);
  assert.equal(findCommand(["trust", "list"], cmds)?.command.name, "trust");
  assert.equal(findCommand(["nope"], cmds), undefined);
});
