// Deterministic simulation of the Raft core under seeded random faults (see sim/).
// SIM_SEEDS=N overrides how many seeds run; SIM_SEED=S runs one seed and prints its trace.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { runSimulation } from "./sim/simulation.ts";
import type { SimOptions, SimResult } from "./sim/simulation.ts";

interface Regression extends SimOptions {
  name: string;
  why: string;
}

const regressions = JSON.parse(readFileSync(new URL("./sim/regressions.json", import.meta.url), "utf8")) as Regression[];

function report(r: SimResult): string {
  return `seed ${r.seed} failed: ${r.error}\n--- last events ---\n${r.trace.join("\n")}\nreplay: SIM_SEED=${r.seed} npm test -- simulation`;
}

const single = process.env.SIM_SEED;
if (single) {
  test(`simulation seed ${single}`, () => {
    const r = runSimulation({ seed: Number(single) });
    console.log(JSON.stringify(r.stats));
    assert.ok(r.ok, report(r));
  });
} else {
  for (const reg of regressions) {
    test(`regression ${reg.name}: ${reg.why}`, () => {
      const r = runSimulation(reg);
      assert.ok(r.ok, report(r));
    });
  }

  const total = Number(process.env.SIM_SEEDS ?? 1000);
  // Several flavours of schedule so each fault family also runs on its own.
  const flavours: [string, number, Partial<SimOptions>][] = [
    ["faults and membership", 0.5, {}],
    ["faults, five founders", 0.2, { founders: 5, membership: false }],
    ["membership only", 0.15, { faults: false }],
    ["one founder that grows", 0.15, { founders: 1 }],
  ];
  for (const [name, share, extra] of flavours) {
    test(`simulation: ${name}`, () => {
      const count = Math.ceil(total * share);
      const failures: SimResult[] = [];
      let operations = 0;
      for (let seed = 1; seed <= count; seed++) {
        const r = runSimulation({ seed: seed * 7919 + name.length, ...extra });
        operations += r.stats.operations ?? 0;
        if (!r.ok) failures.push(r);
        if (failures.length >= 3) break;
      }
      assert.equal(failures.length, 0, failures.map(report).join("\n\n"));
      assert.ok(operations > count * 50, `too few client operations checked (${operations})`);
    });
  }
}
