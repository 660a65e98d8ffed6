// `instances.placement.scriptlet`: checked when it is set (syntax, names, and an
// instance_placement(request, candidate_members) function), refused with the line.
import { z } from "zod";
import { validateScriptlet } from "../../../placement/src/scriptlet/index.ts";

export const scriptletSchema = z.string().superRefine((source, ctx) => {
  const v = validateScriptlet(source);
  if (!v.ok) ctx.addIssue({ code: "custom", message: `Invalid placement scriptlet: ${v.error}` });
});
