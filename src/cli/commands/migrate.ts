/**
 * `tessera migrate-from-glance`: every image of a running Glance copied into this Tessera
 * (src/migrate/), with a progress bar on standard error (a JSON line per image there instead
 * when it is not a terminal), and the report as the result. Glance is reached with an endpoint and a token, or
 * with the OS_* variables the openstack CLI reads (Keystone password credentials, never on the
 * command line). It takes the data directory's lock: run it before the node serves, or on a
 * node of a shared catalog that is not serving.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { lockDir } from "../../engine/dir-lock.js";
import type { KeystonePassword } from "../../keystone-password.js";
import { type GlanceAccess, glanceAccess } from "../../migrate/glance-auth.js";
import { GlanceSource } from "../../migrate/glance-source.js";
import { migrateFromGlance } from "../../migrate/migrate.js";
import { type Command, configOf, type Flags, intOption, print, UsageError } from "../command.js";
import { withService } from "../data-dir.js";
import { progress } from "../progress.js";

export const migrateFromGlanceCommand: Command = {
  name: "migrate-from-glance",
  usage: `  tessera migrate-from-glance [--glance URL] [--token T] [--header 'Name: value']...
                  [--image ID] [--parallel N] [--report FILE] [--data DIR] [--config FILE]
                                              copy every image of a running Glance, with its id,
                                              owner, properties, members and times, verifying md5
                                              and os_hash; resumable, and a second run copies
                                              nothing; --image: only that one (a killed image,
                                              which Glance lists to no one). Keystone credentials from OS_AUTH_URL,
                                              OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME (Glance's
                                              endpoint from its catalog); OS_IMAGE_URL and
                                              OS_AUTH_TOKEN otherwise`,
  async run({ values }) {
    const cfg = configOf(values);
    const parallel = intOption(values.parallel, "parallel");
    if (parallel === 0) throw new UsageError("--parallel must be at least 1");
    const { endpoint, auth } = await glanceAccess(accessOf(values, process.env));
    const glance = new GlanceSource(endpoint, auth);
    // A fresh Tessera's directory: the migration may be the first thing to write there.
    await mkdir(cfg.dataDir, { recursive: true });
    // On a terminal, one bar (its label fixed, or each change would start another line);
    // otherwise a JSON line per image, nothing else, for logs and jq.
    const tty = process.stderr.isTTY === true;
    const bar = tty ? progress("bytes") : undefined;
    const report = await withService(cfg, "images", await lockDir(cfg.dataDir), ({ images }) =>
      migrateFromGlance(images, glance, {
        parallel,
        only: values.image === undefined ? undefined : [values.image],
        onProgress: (p) => bar?.update("data read from Glance (at most)", p.bytes, p.ofBytes),
        onImage: (image, outcome) => {
          if (!tty) process.stderr.write(`${JSON.stringify({ image: image.id, ...outcome })}\n`);
        },
      }),
    ).finally(() => bar?.stop());
    if (values.report) await writeFile(values.report, `${JSON.stringify(report, null, 2)}\n`);
    print(report);
    if (report.failures.length > 0) process.exitCode = 1;
  },
};

function accessOf(values: Flags, env: NodeJS.ProcessEnv): GlanceAccess {
  const endpoint = values.glance ?? env.OS_IMAGE_URL;
  const token = values.token ?? env.OS_AUTH_TOKEN;
  const keystone: (KeystonePassword & { authUrl: string; interface?: string; region?: string }) | undefined =
    env.OS_AUTH_URL && env.OS_USERNAME && !token
      ? {
          // As the openstack CLI takes it: with or without the version.
          authUrl: /\/v3\/?$/.test(env.OS_AUTH_URL)
            ? env.OS_AUTH_URL
            : `${env.OS_AUTH_URL.replace(/\/+$/, "")}/v3`,
          username: env.OS_USERNAME,
          password: env.OS_PASSWORD,
          projectName: env.OS_PROJECT_NAME,
          userDomain: env.OS_USER_DOMAIN_ID,
          projectDomain: env.OS_PROJECT_DOMAIN_ID,
          interface: env.OS_INTERFACE,
          region: env.OS_REGION_NAME,
        }
      : undefined;
  return { endpoint, token, headers: values.header, keystone };
}
