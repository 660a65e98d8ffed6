// Runs one gateway:
//   node --import tsx services/api/src/main.ts --dir DIR --listen 127.0.0.1:8443 \
//     --db 127.0.0.1:7001,127.0.0.1:7002 --cert cluster.crt --key cluster.key [--name NAME]
// --cert/--key are the cluster certificate the database nodes use (mTLS to them, and
// the HTTPS certificate); when both files are missing a new one is generated with
// IP SANs for the listen address. Prints the HTTPS address once serving.
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ClusterDatabaseClient } from "../../raft/src/node/database-client.ts";
import { loadOrCreateCertificate } from "../../raft/src/transport/certificate.ts";
import { clusterCertificateOptions } from "./cluster/certificate.ts";
import { LiveTls } from "../../raft/src/transport/live-tls.ts";
import { applySchema } from "./schema.ts";
import { checkSans, splitHostPort, startGateway } from "./server.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: "string", default: ".shoal" },
      listen: { type: "string", default: "127.0.0.1:8443" },
      db: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      name: { type: "string", default: os.hostname() },
    },
  });
  if (!values.db) throw new Error("--db <address,...> is required (the database nodes)");
  const certPath = values.cert ?? join(values.dir, "cluster.crt");
  const keyPath = values.key ?? join(values.dir, "cluster.key");
  const [listenHost] = splitHostPort(values.listen);
  const pair = await loadOrCreateCertificate(certPath, keyPath, clusterCertificateOptions([listenHost, "127.0.0.1", "::1", "localhost", os.hostname()]));

  checkSans(pair.cert, listenHost); // before anything else: lxc would refuse the certificate
  // Live: `lxc cluster update-certificate` rotates it in this running process.
  const tls = new LiveTls({ cert: pair.cert, key: pair.key, ca: pair.cert });
  const db = new ClusterDatabaseClient(values.db.split(",").map((s) => s.trim()).filter(Boolean), tls);
  const schema = await applySchema(db).catch((e: unknown) => {
    throw new Error(`cannot reach the database at ${values.db}: ${e instanceof Error ? e.message : String(e)}`);
  });
  const gateway = await startGateway({ db, dir: values.dir, listen: values.listen, cert: pair.cert, key: pair.key, serverName: values.name, tls, certPath, keyPath });
  process.stdout.write(
    `shoal gateway: https://${gateway.httpsAddress} (schema v${schema.toVersion}), unix socket ${gateway.unixSocket}\n` +
      `  add it as a remote: lxc remote add shoal https://${gateway.httpsAddress} --password <core.trust_password> --accept-certificate\n`,
  );

  // Members that joined later are database nodes too: learn their addresses, so the
  // gateway keeps a way in when the nodes it started with are gone.
  const learnNow = () => {
    db.status()
      .then((s) => db.learnAddresses(s.nodes.map((n) => n.address)))
      .catch(() => undefined);
  };
  learnNow();
  const learn = setInterval(learnNow, 1_000);
  learn.unref();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void gateway.close().finally(() => {
      db.close();
      process.exit(0);
    });
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`shoal gateway: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
