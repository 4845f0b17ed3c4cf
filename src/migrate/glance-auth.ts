/**
 * How the migration reaches Glance: its endpoint and credentials, from what an operator has at
 * hand. Either an endpoint and a token (or the headers a trusted proxy would send), or admin
 * credentials for Keystone, which issues the token, names Glance's endpoint in its catalog,
 * and issues a new token when the first expires halfway through a long migration.
 */
import {
  catalogEndpoint,
  type KeystonePassword,
  passwordToken,
  type TokenBody,
} from "../keystone-password.js";
import { type GlanceAuth, GlanceSourceError } from "./glance-source.js";

export interface GlanceAccess {
  /** Glance's endpoint; with Keystone, found in its catalog when not given. */
  endpoint?: string;
  token?: string;
  /** Further headers sent with every request ("Name: value"). */
  headers?: string[];
  keystone?: KeystonePassword & { authUrl: string; interface?: string; region?: string };
}

export async function glanceAccess(o: GlanceAccess): Promise<{ endpoint: string; auth: GlanceAuth }> {
  const fixed = parseHeaders(o.headers ?? []);
  if (o.token) fixed["X-Auth-Token"] = o.token;
  const ks = o.keystone;
  if (!ks) {
    if (!o.endpoint) throw new GlanceSourceError("Glance's endpoint is needed (or Keystone credentials)");
    return { endpoint: o.endpoint, auth: { headers: async () => fixed, renew: async () => false } };
  }
  const issue = async () => {
    const { answer, token } = await passwordToken((u, init) => fetch(u, init), ks.authUrl, ks, {
      catalog: true,
    });
    if (!token) {
      await answer.body?.cancel();
      throw new GlanceSourceError(`Keystone at ${ks.authUrl} refused ${ks.username}: ${answer.status}`);
    }
    return { token, body: (await answer.json()) as TokenBody };
  };
  let current = await issue();
  const endpoint = o.endpoint ?? catalogEndpoint(current.body, "image", ks.interface ?? "public", ks.region);
  if (!endpoint) throw new GlanceSourceError("Keystone's catalog has no image endpoint for this user");
  return {
    endpoint,
    auth: {
      headers: async () => ({ ...fixed, "X-Auth-Token": current.token }),
      renew: async () => {
        current = await issue();
        return true;
      },
    },
  };
}

function parseHeaders(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(":");
    if (at <= 0) throw new GlanceSourceError(`header ${JSON.stringify(line)} is not "Name: value"`);
    out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return out;
}
