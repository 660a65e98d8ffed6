// The file format of testdata/*.txt, after etcd's datadriven package:
//
//   # comments (any number of lines; blank lines between blocks are free)
//   command arg arg key=value
//   ----
//   expected output (zero or more lines, ended by a blank line or the end of the file)
//
// Outputs never contain blank lines, so the first blank line ends a block.

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
