// Single-server membership changes. A change takes effect on a node as soon as the
// entry carrying it is in its log (configuration.ts); the leader allows only one
// uncommitted change at a time and none before it has committed an entry of its own
// term (see raft.ts), which is what keeps single-server changes safe across leader
// changes.

import type { Config, NodeId, Role } from "./types.ts";

export type ConfChange =
  | { op: "set-role"; id: NodeId; role: Role; address: string }
  | { op: "remove"; id: NodeId };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const cc = JSON.parse(decoder.decode(data)) as ConfChange;
  if (cc.op !== "set-role" && cc.op !== "remove") throw new Error(`unknown conf change ${JSON.stringify(cc)}`);
  return cc;
}

export function voters(config: Config): NodeId[] {
  return Object.keys(config.members)
    .filter((id) => config.members[id].role === "voter")
    .sort();
}

/** Nodes that receive the log: voters and standbys. Spares hold no replica. */
export function replicas(config: Config): NodeId[] {
  return Object.keys(config.members)
    .filter((id) => config.members[id].role !== "spare")
    .sort();
}

export function applyConfChange(config: Config, cc: ConfChange): Config {
  const members = { ...config.members };
  if (cc.op === "remove") delete members[cc.id];
  else members[cc.id] = { role: cc.role, address: cc.address || members[cc.id]?.address || "" };
  return { members };
}

/** Why a change cannot be proposed against `config`, or undefined when it can. */
export function checkConfChange(config: Config, cc: ConfChange): string | undefined {
  const current = config.members[cc.id];
  if (cc.op === "remove") {
    if (!current) return `unknown node "${cc.id}"`;
    if (current.role === "voter" && voters(config).length === 1) return `cannot remove the last voter "${cc.id}"`;
    return undefined;
  }
  if (!cc.id) return "node id is empty";
  if (cc.role !== "voter" && cc.role !== "standby" && cc.role !== "spare") return `unknown role "${String(cc.role)}"`;
  if (!current && !cc.address) return `new node "${cc.id}" needs an address`;
  if (current?.role === "voter" && cc.role !== "voter" && voters(config).length === 1) {
    return `cannot demote the last voter "${cc.id}"`;
  }
  return undefined;
}

export function cloneConfig(config: Config): Config {
  const members: Config["members"] = {};
  for (const [id, m] of Object.entries(config.members)) members[id] = { ...m };
  return { members };
}
