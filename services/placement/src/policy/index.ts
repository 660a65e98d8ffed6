// The default placement policy (no scriptlet set).
export * from "./default-policy.ts";
