// Differential corpus: each corpus/NAME.star has the exact expected output in
// corpus/NAME.out (print lines, then "error: scriptlet:LINE:COL: ..." when the
// program fails). The programs cover where Starlark differs from Python; each
// file's comment says how. Regenerate an .out only after checking it by hand:
//   node --import tsx services/placement/test/support/regen-corpus.ts NAME
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCorpusProgram } from "./support/corpus.ts";

const dir = join(fileURLToPath(new URL(".", import.meta.url)), "corpus");
const programs = readdirSync(dir).filter((f) => f.endsWith(".star")).sort();

test("the corpus is not empty and every program has an expected output", () => {
  assert.ok(programs.length >= 15);
  for (const p of programs) readFileSync(join(dir, p.replace(/\.star$/, ".out")), "utf8");
});

for (const p of programs) {
  test(`corpus: ${p}`, () => {
    const source = readFileSync(join(dir, p), "utf8");
    const expected = readFileSync(join(dir, p.replace(/\.star$/, ".out")), "utf8");
    assert.equal(runCorpusProgram(source), expected);
  });
}
