/** Tenants for the tests of auth modes: a static tokens file, and a client acting with a token. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface Person {
  project: string;
  user: string;
  roles: string[];
}

/** Writes a tokens file in `dir` where each person's token is "<name>-token"; returns its path. */
export async function writeTokens(dir: string, people: Record<string, Person>): Promise<string> {
  const file = join(dir, "tokens.json");
  const tokens = Object.fromEntries(Object.entries(people).map(([name, p]) => [`${name}-token`, p]));
  await writeFile(file, JSON.stringify({ tokens }));
  return file;
}

/** fetch with X-Auth-Token `token` against `base()`: JSON bodies, or Buffers as `type`. */
export function withToken(base: () => string, token: string) {
  return (method: string, path: string, body?: unknown, type = "application/json") =>
    fetch(`${base()}${path}`, {
      method,
      headers: {
        "X-Auth-Token": token,
        Accept: "application/json",
        ...(body !== undefined ? { "Content-Type": type } : {}),
      },
      body:
        body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
    });
}
