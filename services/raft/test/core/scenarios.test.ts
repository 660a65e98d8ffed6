// Runs every testdata/*.txt scenario through the interaction harness and compares
// each command's output with the expected one in the file.
//
//   npm test -- test/core/scenarios              check
//   REWRITE=1 npm test -- test/core/scenarios    rewrite the expected outputs in place
//
// After REWRITE=1, read the diff: the new output is only right if the story is.

import { readdirSync } from "node:fs";
import { test } from "node:test";
import { checkStoryFile } from "./datadriven.ts";
import { Interaction } from "./interaction.ts";

const dir = new URL("./testdata/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".txt")).sort();

for (const file of files) {
  test(`scenario ${file}`, () => {
    const env = new Interaction();
    checkStoryFile(new URL(file, dir), (name, args) => env.run({ name, args }));
  });
}
