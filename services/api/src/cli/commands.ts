// The `shoal` sub-commands. Each lives in a file of its own and is loaded only when
// it runs (so `shoal db` does not load the gateway). Adding one = one file exporting
// `run(args)` + one line below. A name may have several words ("trust add").
export interface CommandModule {
  /**
   * Runs the command with the arguments after its name. A number is the exit code
   * (the process exits with it); undefined means the command keeps serving until a
   * signal stops it (long-running services).
   */
  run(args: string[]): Promise<number | undefined>;
}

export interface Command {
  /** Words after `shoal`, e.g. "up" or "trust add". */
  name: string;
  /** Arguments shown in the usage text. */
  args: string;
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: Command[] = [
  { name: "up", args: "[--dir DIR] [--members N]", summary: "run a local cluster on this machine (default .shoal, 3 members); again on the same DIR resumes it", load: () => import("./up.ts") },
  { name: "member", args: "--dir DIR (--bootstrap --name NAME | --join TOKEN) --listen HOST:PORT", summary: "run one cluster member: database node, member service, coordinator", load: () => import("./member.ts") },
  { name: "db", args: "--id NAME --dir DIR --listen HOST:PORT --cert F --key F [--bootstrap ...]", summary: "run one database node (services/raft)", load: () => import("./db.ts") },
  { name: "gateway", args: "--dir DIR --listen HOST:PORT --db ADDR,... [--cert F --key F] [--name NAME]", summary: "run one gateway: the LXD REST API over HTTPS and DIR/unix.socket", load: () => import("./gateway.ts") },
  { name: "scriptlet test", args: "[FILE] [--dir DIR] [--name NAME] [--config K=V]... [--reason R] [--target M]", summary: "run a placement scriptlet against the live cluster; print the decision and its logs", load: () => import("./scriptlet-test.ts") },
  { name: "trust add", args: "NAME [--dir DIR]", summary: "print a single-use trust token for a client (lxc remote add shoal TOKEN)", load: () => import("./trust-add.ts") },
];

/** The command whose (longest) name starts `argv`, and the arguments after it. */
export function findCommand(argv: string[], commands: Command[] = COMMANDS): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined;
  for (const command of commands) {
    const words = command.name.split(" ");
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(" ").length)) {
      best = { command, rest: argv.slice(words.length) };
    }
  }
  return best;
}

export function usage(commands: Command[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "Usage: shoal <command> [options]",
    "",
    "Shoal: a clustering control plane that speaks the LXD REST API.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}\n  ${" ".repeat(width)}    shoal ${c.name} ${c.args}`),
    "",
    "`shoal <command> --help` shows a command's options.",
    "",
  ].join("\n");
}

/** Prints a command's help when asked; true if it did. */
export function helpRequested(args: string[], text: string): boolean {
  if (!args.includes("--help") && !args.includes("-h")) return false;
  process.stdout.write(text.endsWith("\n") ? text : text + "\n");
  return true;
}
