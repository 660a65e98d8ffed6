// Runs every testdata/*.txt scenario through the interaction harness and compares
// each command's output with the expected one in the file.
//
//   npm test -- test/core/scenarios              check
//   REWRITE=1 npm test -- test/core/scenarios    rewrite the expected outputs in place
//
// After REWRITE=1, read the diff: the new output is only right if the story is.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { parse, rewrite } from "./datadriven.ts";
import { Interaction } from "./interaction.ts";

const dir = new URL("./testdata/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".txt")).sort();

for (const file of files) {
  test(`scenario ${file}`, () => {
    const path = new URL(file, dir);
    const text = readFileSync(path, "utf8");
    const blocks = parse(text, file);
    const env = new Interaction();
    const actual: string[] = [];
    const mismatches: string[] = [];
    for (const b of blocks) {
      const out = env.run({ name: b.name, args: b.args });
      if (/\n\s*\n/.test(out) || out.startsWith("\n")) throw new Error(`${file}:${b.line}: output contains a blank line`);
      actual.push(out);
      if (out !== b.expected) {
        mismatches.push(`${file}:${b.line}: ${b.name} ${b.args.join(" ")}\n--- expected\n${b.expected}\n--- actual\n${out}`);
      }
    }
    if (process.env.REWRITE) {
      writeFileSync(path, rewrite(text, blocks, actual));
      return;
    }
    assert.equal(mismatches.length, 0, `${mismatches.join("\n\n")}\n\n(run with REWRITE=1 to accept, then read the diff)`);
  });
}
