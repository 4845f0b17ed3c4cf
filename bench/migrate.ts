/**
 * `tessera migrate-from-glance` against the real Glance (.ci/glance-peer.sh): a fleet of images
 * that share a base (a base and variants of it with a MiB of their own, as point releases and
 * tenants' copies are), migrated into a fresh Tessera with fsync on. The reference, in the same
 * run: reading every image from Glance with curl to /dev/null (what any copy costs at least).
 * Then the second run, which must copy nothing.
 *
 *   npm run bench:migrate -- [--base-mb 512] [--variants 7] [--parallel 1]
 */
import { execFile } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { log, makeRandomFile, mbps, ratio, timed } from "./common.js";
import { curl, download, startGlance } from "./targets.js";

const run = promisify(execFile);
const BIN = new URL("../src/cli/main.js", import.meta.url).pathname;
const MiB = 1024 * 1024;

const { values: opt } = parseArgs({
  options: {
    "base-mb": { type: "string", default: "512" },
    variants: { type: "string", default: "7" },
    parallel: { type: "string", default: "1" },
    glance: { type: "string", default: ".ci/glance-peer.sh" },
  },
});

/** A copy of `base` with `MiB` random bytes of its own at a place of its own. */
async function makeVariant(base: string, path: string, i: number, size: number): Promise<void> {
  await run("cp", [base, path]);
  const fh = await open(path, "r+");
  await fh.write(randomFillSync(Buffer.alloc(MiB)), 0, MiB, ((i * 97 * MiB) % (size - MiB)) & ~4095);
  await fh.close();
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-migrate-"));
  const size = Number(opt["base-mb"]) * MiB;
  const files = [join(work, "base.raw")];
  await makeRandomFile(files[0] as string, size);
  for (let i = 1; i <= Number(opt.variants); i++) {
    files.push(join(work, `variant-${i}.raw`));
    await makeVariant(files[0] as string, files[i] as string, i, size);
  }
  const glance = await startGlance(join(work, "glance"), opt.glance);
  if (!glance) throw new Error("the real Glance is needed (.ci/glance-peer.sh)");
  try {
    const t = { name: "glance", url: glance.url };
    const ids: string[] = [];
    for (const [i, file] of files.entries()) {
      const res = await fetch(`${t.url}/v2/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: `fleet-${i}`, disk_format: "raw", container_format: "bare" }),
      });
      const id = ((await res.json()) as { id: string }).id;
      const up = await curl([
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "-T",
        file,
        `${t.url}/v2/images/${id}/file`,
      ]);
      if (up.code !== "204") throw new Error(`upload to Glance answered ${up.code}`);
      ids.push(id);
    }
    const logical = size * files.length;
    const read = await timed(async () => {
      for (const id of ids) await download(t, id, size);
    });
    log(`glance read: ${mbps(logical, read.s)} MB/s`);
    const data = join(work, "tessera");
    const migrate = () =>
      run(
        process.execPath,
        [BIN, "migrate-from-glance", "--glance", t.url, "--data", data, "--parallel", opt.parallel],
        {
          maxBuffer: 1 << 24,
        },
      );
    const first = await timed(migrate);
    const report = JSON.parse(first.value.stdout) as {
      bytesRead: number;
      bytesStored: number;
      images: unknown;
    };
    const second = await timed(migrate);
    const again = JSON.parse(second.value.stdout) as { bytesRead: number; images: unknown };
    console.log(
      JSON.stringify({
        images: files.length,
        logicalMB: Math.round(logical / 1e6),
        glanceReadMBps: mbps(logical, read.s),
        migrateMBps: mbps(report.bytesRead, first.s),
        migrateVsRead: ratio(read.s, first.s),
        storedMB: Math.round(report.bytesStored / 1e6),
        dedupRatio: ratio(report.bytesRead, report.bytesStored),
        secondRunSeconds: Math.round(second.s * 100) / 100,
        secondRunBytesRead: again.bytesRead,
        first: report.images,
        second: again.images,
      }),
    );
  } finally {
    await glance.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
