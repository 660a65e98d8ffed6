// Stories of the evacuation planner (src/evacuation/plan.ts), one per
// testdata/evacuation-*.txt file.
//
//   npm test -- placement/test/evacuation              check
//   REWRITE=1 npm test -- placement/test/evacuation    rewrite the expected outputs
//
// Commands:
//   member NAME [arch=A] [domain=D] [status=ONLINE|OFFLINE|EVACUATED] [scheduler=all|group|manual] [groups=a,b]
//   instance NAME on=MEMBER [running] [shared] [vm] [project=P] [arch=A] [KEY=VALUE config...]
//   evacuate MEMBER [mode=M]     plan an evacuation, apply it to the story's state, print the steps
//   restore MEMBER               plan a restore, apply it, print the steps
//   show                         where every instance is, and its state
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { planEvacuation, planRestore, type EvacuationStep, type PlannedInstance } from "../src/evacuation/plan.ts";
import type { MemberStatus, PolicyMember } from "../src/policy/index.ts";
import { checkStoryFile } from "../../raft/test/core/datadriven.ts";

class Story {
  members: PolicyMember[] = [];
  instances: PlannedInstance[] = [];

  run(name: string, args: string[]): string {
    const kv = new Map(args.filter((a) => a.includes("=")).map((a) => [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]));
    const flags = new Set(args.filter((a) => !a.includes("=")));
    switch (name) {
      case "member":
        this.members.push({
          name: args[0],
          status: (kv.get("status") ?? "ONLINE") as MemberStatus,
          architecture: kv.get("arch") ?? "x86_64",
          failure_domain: kv.get("domain") ?? "default",
          groups: (kv.get("groups") ?? "default").split(","),
          config: kv.has("scheduler") ? { "scheduler.instance": kv.get("scheduler")! } : {},
          instances: 0,
        });
        return "";
      case "instance": {
        const config: Record<string, string> = {};
        for (const [k, v] of kv) if (!["on", "project", "arch"].includes(k)) config[k] = v;
        this.instances.push({
          project: kv.get("project") ?? "default",
          name: args[0],
          location: kv.get("on")!,
          running: flags.has("running"),
          architecture: kv.get("arch") ?? "x86_64",
          type: flags.has("vm") ? "virtual-machine" : "container",
          sharedStorage: flags.has("shared"),
          config,
        });
        return "";
      }
      case "evacuate": {
        const member = this.member(args[0]);
        this.count();
        const plan = planEvacuation({ member: member.name, memberStatus: member.status, mode: kv.get("mode"), instances: this.instances.filter((i) => i.location === member.name), members: this.members });
        if (!plan.ok) return `error ${plan.status}: ${plan.error}`;
        this.apply(plan.steps, "evacuate");
        member.status = "EVACUATED";
        return this.describe(plan.steps);
      }
      case "restore": {
        const member = this.member(args[0]);
        const plan = planRestore({ member: member.name, memberStatus: member.status, instances: this.instances });
        if (!plan.ok) return `error ${plan.status}: ${plan.error}`;
        this.apply(plan.steps, "restore");
        member.status = "ONLINE";
        return this.describe(plan.steps);
      }
      case "show":
        return this.instances
          .map((i) => `${i.name}: on ${i.location}, ${i.running ? "running" : "stopped"}${i.config["volatile.evacuate.origin"] ? `, origin ${i.config["volatile.evacuate.origin"]}` : ""}`)
          .join("\n");
      default:
        throw new Error(`unknown command ${name}`);
    }
  }

  member(name: string): PolicyMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  count(): void {
    for (const m of this.members) m.instances = this.instances.filter((i) => i.location === m.name).length;
  }

  /** What the coordinator's executor would do, applied to the story's state. */
  apply(steps: EvacuationStep[], kind: "evacuate" | "restore"): void {
    for (const s of steps) {
      const i = this.instances.find((x) => x.project === s.project && x.name === s.name)!;
      const wasRunning = i.running;
      if (s.stopFirst) i.running = false;
      if (s.action === "stop" && kind === "evacuate" && wasRunning) i.config["volatile.last_state.power"] = "RUNNING";
      if (s.target) i.location = s.target;
      if (s.startAfter) i.running = true;
      if (s.action === "start") delete i.config["volatile.last_state.power"];
      if (s.origin) i.config["volatile.evacuate.origin"] = s.origin;
      else delete i.config["volatile.evacuate.origin"];
    }
  }

  describe(steps: EvacuationStep[]): string {
    if (!steps.length) return "nothing to do";
    return steps
      .map((s) => {
        if (s.action === "stop") return `${s.name}: ${s.stopFirst ? "stop in place" : "stays, stopped"} (${s.reason})`;
        if (s.action === "start") return `${s.name}: start (${s.reason})`;
        return `${s.name}: ${s.stopFirst ? "stop, " : ""}${s.action} to ${s.target}${s.startAfter ? ", start" : ""} (${s.reason})`;
      })
      .join("\n");
  }
}

const dir = new URL("./testdata/", import.meta.url);
for (const file of readdirSync(dir).filter((f) => f.startsWith("evacuation-") && f.endsWith(".txt")).sort()) {
  test(`evacuation story ${file}`, () => {
    const story = new Story();
    checkStoryFile(new URL(file, dir), (name, args) => story.run(name, args));
  });
}
