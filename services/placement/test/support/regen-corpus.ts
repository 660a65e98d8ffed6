// Writes corpus/NAME.out from the interpreter's current behaviour, for review.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCorpusProgram } from "./corpus.ts";

const dir = join(fileURLToPath(new URL("..", import.meta.url)), "corpus");
for (const name of process.argv.slice(2)) {
  const out = runCorpusProgram(readFileSync(join(dir, `${name}.star`), "utf8"));
  writeFileSync(join(dir, `${name}.out`), out);
  process.stdout.write(`== ${name}\n${out}`);
}
