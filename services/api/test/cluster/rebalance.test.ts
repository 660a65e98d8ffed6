// Runs every testdata/*.txt story of the role rebalancer (services/api/src/cluster/rebalance.ts).
//
//   npm test -- test/cluster/rebalance              check
//   REWRITE=1 npm test -- test/cluster/rebalance    rewrite the expected outputs in place
//
// Commands:
//   member ID ROLE [domain=D] [leader] [offline] [leaving]   add a member (ROLE voter|standby|spare)
//   set max_voters=N max_standby=M                          change the targets
//   offline ID | online ID | leave ID | leader ID | remove ID | domain ID D
//   rebalance       apply changes until there are none (prints each), then the roles
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { nextRoleChange, type DatabaseRole, type RoleMember, type RoleTargets } from "../../src/cluster/rebalance.ts";
import { checkStoryFile } from "../../../raft/test/core/datadriven.ts";

class Story {
  members: RoleMember[] = [];
  targets: RoleTargets = { maxVoters: 3, maxStandby: 2 };

  run(name: string, args: string[]): string {
    switch (name) {
      case "member": {
        const [id, role, ...flags] = args;
        if (!["voter", "standby", "spare"].includes(role)) throw new Error(`unknown role ${role}`);
        const m: RoleMember = { id, role: role as DatabaseRole, online: true, failureDomain: "default", leader: false };
        for (const f of flags) {
          if (f.startsWith("domain=")) m.failureDomain = f.slice(7);
          else if (f === "leader") m.leader = true;
          else if (f === "offline") m.online = false;
          else if (f === "leaving") m.leaving = true;
          else throw new Error(`unknown flag ${f}`);
        }
        this.members.push(m);
        return "";
      }
      case "set":
        for (const a of args) {
          const [k, v] = a.split("=");
          if (k === "max_voters") this.targets.maxVoters = Number(v);
          else if (k === "max_standby") this.targets.maxStandby = Number(v);
          else throw new Error(`unknown target ${k}`);
        }
        return "";
      case "offline":
        this.get(args[0]).online = false;
        return "";
      case "online":
        this.get(args[0]).online = true;
        return "";
      case "leave":
        this.get(args[0]).leaving = true;
        return "";
      case "domain":
        this.get(args[0]).failureDomain = args[1];
        return "";
      case "leader":
        for (const m of this.members) m.leader = m.id === args[0];
        return "";
      case "remove":
        this.members = this.members.filter((m) => m.id !== args[0]);
        return "";
      case "rebalance": {
        const lines: string[] = [];
        for (let i = 0; i < 20; i++) {
          const change = nextRoleChange(this.members, this.targets);
          if (!change) break;
          lines.push(`${change.id}: ${change.from} -> ${change.to} (${change.reason})`);
          this.get(change.id).role = change.to;
          if (i === 19) lines.push("... still changing after 20 steps");
        }
        if (lines.length === 0) lines.push("no change");
        lines.push(this.roles());
        return lines.join("\n");
      }
      default:
        throw new Error(`unknown command ${name}`);
    }
  }

  get(id: string): RoleMember {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  roles(): string {
    const show = (role: DatabaseRole) =>
      this.members
        .filter((m) => m.role === role)
        .map((m) => `${m.id}${m.failureDomain !== "default" ? `@${m.failureDomain}` : ""}${m.online ? "" : "(offline)"}${m.leaving ? "(leaving)" : ""}`)
        .join(" ") || "-";
    return `voters: ${show("voter")} | stand-bys: ${show("standby")} | spares: ${show("spare")}`;
  }
}

const dir = new URL("./testdata/", import.meta.url);
for (const file of readdirSync(dir).filter((f) => f.startsWith("rebalance-") && f.endsWith(".txt")).sort()) {
  test(`rebalancer story ${file}`, () => {
    const story = new Story();
    checkStoryFile(new URL(file, dir), (name, args) => story.run(name, args));
  });
}
