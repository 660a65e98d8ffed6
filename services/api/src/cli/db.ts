// `shoal db …`: one database node (services/raft/src/node/main.ts), for real
// deployments (deploy/systemd/shoal-db@.service) and for `shoal up`'s members.
import { helpRequested } from "./commands.ts";

const HELP = `Usage: shoal db --id NAME --dir DIR --listen HOST:PORT --cert FILE --key FILE [--bootstrap NAME=HOST:PORT,...]
                [--tick-ms MS] [--snapshot-every N]

Runs one replicated database node. Prints "ready HOST:PORT" once it serves.
All nodes share one cluster certificate (mTLS both ways). Founders are started with the
same --bootstrap list; a node started again on the same --dir resumes (--bootstrap is
then ignored). SIGTERM/SIGINT hand leadership over and stop cleanly.
`;

export async function run(args: string[]): Promise<number | undefined> {
  if (helpRequested(args, HELP)) return 0;
  // The node's main parses process.argv itself: give it exactly its arguments.
  process.argv = [process.argv[0], process.argv[1], ...args];
  await import("../../../raft/src/node/main.ts");
  return undefined;
}
