// The member agent's public surface for other services (the shoal CLI, the gateway).
export { runMemberAgent, type MemberAgentOptions, type RunningMemberAgent } from "./agent/main.ts";
export { MemberClient, type ExecResult, type ExecSession } from "./agent/client.ts";
export { Member, type MemberOptions } from "./agent/member.ts";
export type { InstanceDriver, InstanceRecord, DriverName } from "./drivers/driver.ts";
export type { PoolConfig } from "./storage/pool.ts";
