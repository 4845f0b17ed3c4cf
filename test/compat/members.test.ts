/**
 * Image sharing with the real glance CLI (python3-glanceclient) against a Tessera in tokens
 * mode: the owner shares an image with another project, which sees it pending, accepts it, finds
 * it in its listing and downloads it; the owner removes the member and the image is gone for it.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runAsync } from "../helpers/run.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const GLANCE = "/usr/bin/glance";
const missing = !existsSync(GLANCE);
if (missing && process.env.CI)
  throw new Error("CI must have the glance CLI (.ci/run installs python3-glanceclient)");
if (missing) console.warn("skipping glance CLI member tests: apt-get install python3-glanceclient");

describe.skipIf(missing)("image members with the glance CLI", () => {
  let work: string;
  let s: TestServer;
  const data = randomBytes(200_000);
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "tessera-members-cli-"));
    const tokens = join(work, "tokens.json");
    await writeFile(
      tokens,
      JSON.stringify({
        tokens: {
          "alice-token": { project: "alpha", user: "alice", roles: ["member"] },
          "bob-token": { project: "beta", user: "bob", roles: ["member"] },
        },
      }),
    );
    s = await startTestServer({ auth: { mode: "tokens", tokensFile: tokens } });
  });
  afterAll(async () => {
    await s?.close();
    if (s) await rm(s.dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const glance = (token: string, ...args: string[]) =>
    runAsync(GLANCE, ["--os-image-url", s.url, "--os-auth-token", token, ...args], {
      cwd: work,
      env: { ...process.env, HOME: join(work, token), OS_CLOUD: "", PYTHONWARNINGS: "ignore" },
      timeout: 120_000,
    });

  test("share, accept, list, download, unshare", { timeout: 180_000 }, async () => {
    const file = join(work, "disk.raw");
    await writeFile(file, data);
    const created = await glance(
      "alice-token",
      "image-create",
      "--name",
      "shared-one",
      "--disk-format",
      "raw",
      "--container-format",
      "bare",
      "--visibility",
      "shared",
      "--file",
      file,
    );
    expect(created.status, created.err).toBe(0);
    const id = /\|\s*id\s*\|\s*([0-9a-f-]{36})/.exec(created.out)?.[1] as string;
    expect(id).toBeDefined();
    expect((await glance("bob-token", "image-show", id)).status).not.toBe(0);

    const added = await glance("alice-token", "member-create", id, "beta");
    expect(added.status, added.err).toBe(0);
    expect(added.out).toMatch(/beta\s*\|\s*pending/);
    // Pending: bob sees the image but does not list it.
    expect((await glance("bob-token", "image-show", id)).status).toBe(0);
    expect((await glance("bob-token", "image-list")).out).not.toContain(id);

    const accepted = await glance("bob-token", "member-update", id, "beta", "accepted");
    expect(accepted.status, accepted.err).toBe(0);
    expect((await glance("bob-token", "image-list")).out).toContain(id);
    const listed = await glance("alice-token", "member-list", "--image-id", id);
    expect(listed.out).toMatch(/beta\s*\|\s*accepted/);
    // The owner may not answer for the member.
    expect((await glance("alice-token", "member-update", id, "beta", "rejected")).status).not.toBe(0);

    const out = join(work, "out.raw");
    const saved = await glance("bob-token", "image-download", "--file", out, id);
    expect(saved.status, saved.err).toBe(0);
    expect((await readFile(out)).equals(data)).toBe(true);

    expect((await glance("alice-token", "member-delete", id, "beta")).status).toBe(0);
    expect((await glance("bob-token", "image-show", id)).status).not.toBe(0);
  });
});
