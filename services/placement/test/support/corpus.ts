// Runs one corpus program the way the corpus test does: load the module, call
// main() if it defines one (globals are frozen by then), and render what it
// printed followed by "error: <message>" if it failed.
import { StarlarkError, compile, load } from "../../src/starlark/index.ts";

export function runCorpusProgram(source: string): string {
  const lines: string[] = [];
  try {
    const program = compile(source);
    const mod = load(program, new Map(), { print: (m) => lines.push(m), limits: { maxSteps: 100_000 } });
    const main = mod.global("main");
    if (main !== undefined) mod.interpreter.callFunction(main, []);
  } catch (err) {
    if (!(err instanceof StarlarkError)) throw err;
    lines.push(`error: ${err.message}`);
  }
  return lines.join("\n") + "\n";
}
