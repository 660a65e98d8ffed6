// `shoal trust add NAME [--dir DIR]`: a trust token for a first client, made through
// the local gateway's unix socket (DIR/unix.socket, full trust), exactly as
// `LXD_DIR=DIR lxc config trust add --name NAME` does. The token is single use:
// `lxc remote add REMOTE TOKEN` on the client trusts its certificate.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { helpRequested } from "./commands.ts";
import { postLocal } from "./local-gateway.ts";
import { encodeToken, type TokenOperation } from "../operations/tokens.ts";

const HELP = `Usage: shoal trust add NAME [--dir DIR]

Prints a single-use trust token for a client called NAME, made by the gateway whose
unix socket is DIR/unix.socket (default .shoal, as \`shoal up\` uses). On the client:
  lxc remote add shoal <token>
`;

export async function run(args: string[]): Promise<number> {
  if (helpRequested(args, HELP)) return 0;
  const { values, positionals } = parseArgs({ args, options: { dir: { type: "string", default: ".shoal" } }, allowPositionals: true });
  if (positionals.length !== 1 || positionals[0] === "") {
    process.stderr.write(HELP);
    return 2;
  }
  const name = positionals[0];
  const socketPath = join(values.dir, "unix.socket");
  const reply = await postLocal(socketPath, "/1.0/certificates", { name, type: "client", token: true }, 15_000);
  if (reply.status !== 202 || reply.json?.type !== "async") {
    process.stderr.write(`shoal trust add: ${reply.json?.error ?? `unexpected answer (HTTP ${reply.status})`}\n`);
    return 1;
  }
  process.stdout.write(`Client ${name} certificate add token:\n${encodeToken(reply.json.metadata as TokenOperation)}\n`);
  return 0;
}
