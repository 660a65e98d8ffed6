// The replicated SQLite state machine: commands, their application, migrations.
export * from "./command.ts";
export * from "./migrations.ts";
export type { Param, Params } from "./param.ts";
export * from "./result.ts";
export * from "./state-machine.ts";
