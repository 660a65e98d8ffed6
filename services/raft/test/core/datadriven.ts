// The file format of testdata/*.txt, after etcd's datadriven package:
//
//   # comments (any number of lines; blank lines between blocks are free)
//   command arg arg key=value
//   ----
//   expected output (zero or more lines, ended by a blank line or the end of the file)
//
// Outputs never contain blank lines, so the first blank line ends a block.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";

export interface Block {
  /** 1-based line of the command. */
  line: number;
  name: string;
  args: string[];
  expected: string;
  /** 0-based [start, end) of the output lines in the file. */
  outputStart: number;
  outputEnd: number;
}

export function parse(text: string, file = "<input>"): Block[] {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) {
      i++;
      continue;
    }
    const [name, ...args] = line.split(/\s+/);
    if (lines[i + 1]?.trim() !== "----") throw new Error(`${file}:${i + 1}: expected "----" after "${line}"`);
    const outputStart = i + 2;
    let end = outputStart;
    while (end < lines.length && lines[end].trim() !== "") end++;
    blocks.push({ line: i + 1, name, args, expected: lines.slice(outputStart, end).join("\n"), outputStart, outputEnd: end });
    i = end;
  }
  return blocks;
}

/** `text` with each block's output replaced by `actual[i]`; everything else is kept verbatim. */
export function rewrite(text: string, blocks: Block[], actual: string[]): string {
  const lines = text.split("\n");
  for (let b = blocks.length - 1; b >= 0; b--) {
    const out = actual[b] === "" ? [] : actual[b].split("\n");
    lines.splice(blocks[b].outputStart, blocks[b].outputEnd - blocks[b].outputStart, ...out);
  }
  return lines.join("\n");
}

/**
 * Runs one story file: every command through `run`, each output compared with the
 * expected one; with REWRITE=1 in the environment the file is rewritten instead.
 * Throws an assertion error listing every mismatch.
 */
export function checkStoryFile(path: URL, run: (name: string, args: string[]) => string): void {
  const file = path.pathname.split("/").pop() ?? String(path);
  const text = readFileSync(path, "utf8");
  const blocks = parse(text, file);
  const actual: string[] = [];
  const mismatches: string[] = [];
  for (const b of blocks) {
    const out = run(b.name, b.args);
    if (/\n\s*\n/.test(out) || out.startsWith("\n")) throw new Error(`${file}:${b.line}: output contains a blank line`);
    actual.push(out);
    if (out !== b.expected) mismatches.push(`${file}:${b.line}: ${b.name} ${b.args.join(" ")}\n--- expected\n${b.expected}\n--- actual\n${out}`);
  }
  if (process.env.REWRITE) {
    writeFileSync(path, rewrite(text, blocks, actual));
    return;
  }
  assert.equal(mismatches.length, 0, `${mismatches.join("\n\n")}\n\n(run with REWRITE=1 to accept, then read the diff)`);
}
