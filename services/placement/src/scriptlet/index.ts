// LXD's placement scriptlet API (`instances.placement.scriptlet`), for the gateway.
export * from "./types.ts";
export {
  ENTRY_POINT, SCRIPTLET_FUNCTIONS, SCRIPTLET_LIMITS, compileScriptlet, requestValue, runPlacementScriptlet,
  validateScriptlet, type CompiledScriptlet,
} from "./placement.ts";
export { toStarlark } from "./convert.ts";
