// A database node process:
//   node --import tsx services/raft/src/node/main.ts --id n1 --dir DIR --listen 127.0.0.1:7001 \
//        --cert cluster.crt --key cluster.key [--bootstrap n1=127.0.0.1:7001,n2=...,n3=...]
// Prints "ready <address>" once it serves. SIGTERM/SIGINT hand leadership over and stop cleanly.

import { parseArgs } from "node:util";
import { loadCertificate } from "../transport/certificate.ts";
import { DatabaseNode } from "./database-node.ts";
import { keepHeapNearLiveSize } from "./heap-growth.ts";
import { addDatabaseService } from "./database-service.ts";

keepHeapNearLiveSize();

const { values } = parseArgs({
  options: {
    id: { type: "string" },
    dir: { type: "string" },
    listen: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    bootstrap: { type: "string" },
    "tick-ms": { type: "string" },
    "snapshot-every": { type: "string" },
  },
});

function required(name: keyof typeof values): string {
  const v = values[name];
  if (typeof v !== "string" || !v) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
  return v;
}

const id = required("id");
const pair = await loadCertificate(required("cert"), required("key"));
const tls = { cert: pair.cert, key: pair.key, ca: pair.cert };
const bootstrap = values.bootstrap?.split(",").map((kv) => {
  const [nodeId, address] = kv.split("=");
  return { id: nodeId, address };
});

const node = await DatabaseNode.open({
  id,
  dir: required("dir"),
  listenAddress: required("listen"),
  tls,
  bootstrap,
  tickMs: values["tick-ms"] ? Number(values["tick-ms"]) : undefined,
  snapshotEvery: values["snapshot-every"] ? Number(values["snapshot-every"]) : undefined,
});
const service = addDatabaseService(node.transport.server, node, tls);
console.log(`ready ${node.address}`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (node.isLeader()) await node.transferLeadership().catch(() => undefined);
  service.close();
  await node.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
