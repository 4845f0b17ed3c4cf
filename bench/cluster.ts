/**
 * Several Tessera nodes behind HAProxy (docs/operations.md, "Several nodes behind a load
 * balancer"): aggregate download MB/s of `--clients` concurrent curl downloads of one random
 * image through HAProxy round robin over one, two and three `tessera serve --workers 1` nodes
 * sharing one PostgreSQL catalog and one filesystem store in a shared directory, against the
 * same clients on one node directly (the reference, measured in the same run, in every round,
 * the configurations' order rotating from round to round).
 *
 *   npm run bench:cluster -- [--size-mb 1024] [--clients 4] [--rounds 3]
 *
 * Every download is checked whole (HTTP 200, every byte) and the answers' X-Served-By counted,
 * so the spread over the nodes shows. The image is read once through each node first: every
 * configuration then reads the packs from the page cache. On a machine with fewer cores than
 * nodes plus clients this shows what the balancer and the shared catalog cost, not how nodes
 * scale. Needs Debian's postgresql and haproxy.
 *
 * Results: a log on stderr, one JSON object on the last line of stdout.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { freePort, log, makeRandomFile, median } from "./common.js";
import { type Haproxy, haveHaproxy, startHaproxyOn } from "./haproxy.js";
import { startPostgres } from "./pg-server.js";
import { startTessera, upload } from "./targets.js";

const { values: opt } = parseArgs({
  options: {
    "size-mb": { type: "string", default: "1024" },
    clients: { type: "string", default: "4" },
    rounds: { type: "string", default: "3" },
  },
});
const run = promisify(execFile);
const r2 = (x: number) => Math.round(x * 100) / 100;
const SIZE = Number(opt["size-mb"]) * 1024 * 1024;
const CLIENTS = Number(opt.clients);
const ROUNDS = Number(opt.rounds);
const NODES = 3;

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** One whole download of image `id` from `base` with curl; who served it (HAProxy's header). */
async function fetchWhole(base: string, id: string): Promise<string> {
  const r = await run("curl", [
    "-s",
    "-S",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code} %{size_download} %header{x-served-by}",
    `${base}/v2/images/${id}/file`,
  ]);
  const [code, bytes, by] = r.stdout.trim().split(" ");
  if (code !== "200" || Number(bytes) !== SIZE) {
    throw new Error(`download from ${base}: HTTP ${code}, ${bytes} of ${SIZE} bytes`);
  }
  return by || "direct";
}

/** `CLIENTS` downloads of `id` from `base` at once: aggregate MB/s over the wall time, and who served them. */
async function together(base: string, id: string): Promise<{ mbps: number; servedBy: string[] }> {
  const began = performance.now();
  const servedBy = await Promise.all(Array.from({ length: CLIENTS }, () => fetchWhole(base, id)));
  const seconds = (performance.now() - began) / 1000;
  return { mbps: (CLIENTS * SIZE) / 1e6 / seconds, servedBy };
}

async function main(): Promise<void> {
  if (!haveHaproxy()) throw new Error("bench:cluster needs HAProxy (apt-get install haproxy)");
  const work = await mkdtemp(join(tmpdir(), "tessera-bench-cluster-"));
  const server = await startPostgres(work);
  const nodes: { child: ChildProcess; url: string }[] = [];
  const balancers: Haproxy[] = [];
  try {
    const shared = join(work, "shared-store");
    await mkdir(shared);
    const config = join(work, "tessera.json");
    await writeFile(
      config,
      JSON.stringify({
        catalog: { type: "postgres", url: await server.database("cluster") },
        stores: { shared: { type: "filesystem", path: shared } },
        defaultStore: "shared",
        gcIntervalSeconds: 0,
        scrubIntervalSeconds: 0,
      }),
    );
    // One after another: the first creates the schema and the store's format record.
    for (let i = 1; i <= NODES; i++) {
      nodes.push(
        await startTessera(join(work, `node${i}`), { args: ["--config", config, "--workers", "1"] }),
      );
    }
    for (let n = 1; n <= NODES; n++) {
      const backends = nodes.slice(0, n).map((x) => x.url);
      // A download of a large image to a slow client may take long: HAProxy must not cut it.
      const o = { backends, checkPath: "/healthcheck", serverTimeoutSeconds: 3600 };
      balancers.push(await startHaproxyOn(await freePort(), o));
    }
    const file = join(work, "random.bin");
    await makeRandomFile(file, SIZE);
    const up = await upload({ name: "node 1", url: nodes[0].url }, file, SIZE);
    await rm(file);
    log(`${opt["size-mb"]} MiB uploaded on node 1 at ${up.mbps | 0} MB/s`);
    for (const x of nodes) await fetchWhole(x.url, up.id);

    const setups = [
      { name: "direct", url: nodes[0].url },
      ...balancers.map((b, k) => ({ name: `haproxy-${k + 1}`, url: b.url })),
    ];
    const runs = new Map(setups.map((s) => [s.name, [] as number[]]));
    const spread = new Map(setups.map((s) => [s.name, new Map<string, number>()]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = [...setups.slice(r % setups.length), ...setups.slice(0, r % setups.length)];
      for (const s of order) {
        const { mbps, servedBy } = await together(s.url, up.id);
        runs.get(s.name)?.push(mbps);
        const seen = spread.get(s.name) as Map<string, number>;
        for (const by of servedBy) seen.set(by, (seen.get(by) ?? 0) + 1);
        log(`  round ${r + 1}, ${s.name}: ${mbps | 0} MB/s (${servedBy.join(" ")})`);
      }
    }

    const direct = r2(median(runs.get("direct") ?? []));
    const through: Record<string, unknown> = {};
    for (let n = 1; n <= NODES; n++) {
      const name = `haproxy-${n}`;
      const mbps = r2(median(runs.get(name) ?? []));
      through[String(n)] = {
        aggregateMBps: mbps,
        ofDirect: r2(mbps / direct),
        servedBy: Object.fromEntries(spread.get(name) ?? []),
      };
      log(`${n} node${n > 1 ? "s" : ""} through HAProxy: ${mbps | 0} MB/s, ×${r2(mbps / direct)} of direct`);
    }
    log(
      `direct to one node: ${direct | 0} MB/s. ${NODES} nodes of one worker each and ${CLIENTS} curl ` +
        `clients on ${availableParallelism()} cores: this shows what the balancer and the shared catalog ` +
        "cost, not how nodes scale.",
    );
    const results = {
      sizeMB: r2(SIZE / 1e6),
      clients: CLIENTS,
      rounds: ROUNDS,
      cores: availableParallelism(),
      workersPerNode: 1,
      store: "filesystem, one shared directory",
      catalog: "postgres",
      direct: { aggregateMBps: direct },
      haproxy: through,
    };
    process.stdout.write(`${JSON.stringify(results)}\n`);
  } finally {
    for (const b of balancers) await b.stop();
    for (const x of nodes) await stopChild(x.child);
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
