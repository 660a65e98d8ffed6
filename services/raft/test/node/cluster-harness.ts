// Starts database nodes in this process on loopback, for integration tests.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseNode } from "../../src/node/database-node.ts";
import type { DatabaseNodeOptions } from "../../src/node/database-node.ts";
import { addDatabaseService } from "../../src/node/database-service.ts";
import { generateCertificate } from "../../src/transport/certificate.ts";
import type { TlsConfig } from "../../src/transport/credentials.ts";
import { freePort } from "../support/node-processes.ts";

export async function clusterTls(): Promise<TlsConfig> {
  const pair = await generateCertificate({ commonName: "shoal-test", hosts: ["127.0.0.1", "localhost"] });
  return { cert: pair.cert, key: pair.key, ca: pair.cert };
}

export interface RunningNode {
  node: DatabaseNode;
  close(): Promise<void>;
}

export class LocalCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "shoal-db-"));
  readonly nodes = new Map<string, RunningNode>();
  addresses = new Map<string, string>();

  constructor(readonly tls: TlsConfig, readonly extra: Partial<DatabaseNodeOptions> = {}) {}

  static async start(ids: string[], extra: Partial<DatabaseNodeOptions> = {}): Promise<LocalCluster> {
    const c = new LocalCluster(await clusterTls(), extra);
    for (const id of ids) c.addresses.set(id, `127.0.0.1:${await freePort()}`);
    const founders = ids.map((id) => ({ id, address: c.addresses.get(id)! }));
    await Promise.all(ids.map((id) => c.startNode(id, founders)));
    return c;
  }

  async startNode(id: string, bootstrap?: { id: string; address: string }[]): Promise<DatabaseNode> {
    if (!this.addresses.has(id)) this.addresses.set(id, `127.0.0.1:${await freePort()}`);
    const node = await DatabaseNode.open({
      id,
      dir: join(this.dir, id),
      listenAddress: this.addresses.get(id)!,
      tls: this.tls,
      bootstrap,
      join: bootstrap ? undefined : [...this.addresses].filter(([n]) => n !== id).map(([n, address]) => ({ id: n, address })),
      tickMs: 20,
      ...this.extra,
    });
    const service = addDatabaseService(node.transport.server, node, this.tls);
    this.nodes.set(id, {
      node,
      close: async () => {
        service.close();
        await node.close();
      },
    });
    return node;
  }

  async stopNode(id: string): Promise<void> {
    await this.nodes.get(id)?.close();
    this.nodes.delete(id);
  }

  async waitFor<T>(what: string, f: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = f();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  leader(): DatabaseNode | undefined {
    return [...this.nodes.values()].map((n) => n.node).find((n) => n.isLeader());
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((id) => this.stopNode(id)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
