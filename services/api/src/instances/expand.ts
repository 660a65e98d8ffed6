// LXD's profile expansion: an instance's profiles' config and devices, in order,
// under its own. The profiles come from the default project unless the instance's
// project has features.profiles.
import { ApiError } from "../response.ts";
import type { Database } from "../schema.ts";
import type { Expanded } from "./instances.ts";

export type Expander = (project: string, profiles: string[], config: Record<string, string>, devices: Record<string, Record<string, string>>) => Expanded;

/** Profiles' config and devices under the instance's own (LXD's expansion). */
export async function expand(db: Pick<Database, "query">, project: string, profiles: string[], config: Record<string, string>, devices: Record<string, Record<string, string>>): Promise<Expanded> {
  return (await loadExpander(db))(project, profiles, config, devices);
}

/**
 * Reads the projects' settings and every profile once (two queries), then expands any
 * number of instances in memory: a listing of thousands costs two reads, not two each.
 */
export async function loadExpander(db: Pick<Database, "query">): Promise<Expander> {
  const [projects, profiles] = await Promise.all([db.query("SELECT name, config FROM projects", []), db.query("SELECT project, name, config, devices FROM profiles", [])]);
  const projectConfig = new Map(projects.rows.map((r) => [String(r[0]), JSON.parse(String(r[1])) as Record<string, string>]));
  const profileRows = new Map(profiles.rows.map((r) => [`${String(r[0])}/${String(r[1])}`, { config: JSON.parse(String(r[2])) as Record<string, string>, devices: JSON.parse(String(r[3])) as Record<string, Record<string, string>> }]));
  return (project, names, config, devices) => {
    const pconf = projectConfig.get(project) ?? {};
    const profileProject = ["true", "1", "yes", "on"].includes((pconf["features.profiles"] ?? "").toLowerCase()) ? project : "default";
    const out: Expanded = { config: {}, devices: {} };
    for (const name of names) {
      const p = profileRows.get(`${profileProject}/${name}`);
      if (!p) throw ApiError.badRequest(`Requested profile "${name}" doesn't exist`);
      Object.assign(out.config, p.config);
      Object.assign(out.devices, p.devices);
    }
    Object.assign(out.config, config);
    Object.assign(out.devices, devices);
    return out;
  };
}
