// `shoal gateway …`: one gateway (services/api/src/main.ts), for real deployments
// and for `shoal up`.
import { helpRequested } from "./commands.ts";

const HELP = `Usage: shoal gateway --dir DIR --listen HOST:PORT --db ADDR[,ADDR...] [--cert FILE --key FILE] [--name NAME]

Runs one gateway: the LXD REST API over HTTPS on --listen and over DIR/unix.socket
(full trust: LXD_DIR=DIR lxc ...). --db lists database node addresses. --cert/--key are
the cluster certificate (default DIR/cluster.crt, DIR/cluster.key; generated when both
are missing) and must carry an IP SAN for the listen address. Stateless: run as many as
you like against the same database.
`;

export async function run(args: string[]): Promise<number | undefined> {
  if (helpRequested(args, HELP)) return 0;
  process.argv = [process.argv[0], process.argv[1], ...args];
  await import("../main.ts");
  return undefined;
}
