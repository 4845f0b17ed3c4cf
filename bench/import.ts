/**
 * `npm run bench:import`: an image brought in by web-download import from an HTTP server on
 * 127.0.0.1 against the same file uploaded plainly (PUT /file), in the same run. Each
 * measurement gets a fresh server and data directory (no deduplication against an earlier
 * round); rounds alternate the two. Reports MB/s of each and import ÷ upload.
 *
 *   --corpus DIR  default ./corpus
 *   --image NAME  default base.qcow2 (disk format from the extension)
 *   --rounds N    default 3
 */
import { type ChildProcess, spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { RunningServer } from "../src/api/server.js";
import { DEFAULT_IMPORT_FILTER } from "../src/images/web-source.js";
import { benchServer, log, mbps, median, ratio } from "./common.js";

const { values: opt } = parseArgs({
  options: {
    corpus: { type: "string", default: "./corpus" },
    image: { type: "string", default: "base.qcow2" },
    rounds: { type: "string", default: "3" },
  },
});
const file = join(opt.corpus, opt.image);
const diskFormat = extname(file).slice(1) || "raw";

/**
 * Both sides that send the bytes run in child processes, as a web server and a client would be
 * elsewhere: in the server's own process they would compete with it for its event loop (which
 * cost the import a fifth of its speed when the file server ran in-process).
 */
const FILE_SERVER = `
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
const file = process.argv[1];
const srv = createServer((_req, res) => {
  res.writeHead(200, { "Content-Length": statSync(file).size, "Content-Type": "application/octet-stream" });
  createReadStream(file).pipe(res);
});
srv.listen(0, "127.0.0.1", () => console.log(srv.address().port));
`;

const UPLOADER = `
import { createReadStream, statSync } from "node:fs";
import { request } from "node:http";
const [file, url] = process.argv.slice(1);
const req = request(url, {
  method: "PUT",
  headers: { "Content-Type": "application/octet-stream", "Content-Length": statSync(file).size },
});
req.on("response", (res) => { res.resume(); process.exitCode = res.statusCode === 204 ? 0 : 1; });
createReadStream(file).pipe(req);
`;

function node(script: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ["--input-type=module", "-e", script, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
}

/** A plain file server in a child process: the source web-download reads from. */
async function fileServer(): Promise<{ url: string; port: number; close: () => void }> {
  const child = node(FILE_SERVER, [file]);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`file server exited with ${code}`)));
  });
  const port = Number(line);
  return { url: `http://127.0.0.1:${port}`, port, close: () => child.kill() };
}

async function fresh(port: number) {
  return benchServer({
    importFilter: { ...DEFAULT_IMPORT_FILTER, allowedHosts: ["127.0.0.1"], allowedPorts: [port] },
  });
}

async function newImage(s: RunningServer): Promise<string> {
  const res = await fetch(`${s.url}/v2/images`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "bench", disk_format: diskFormat, container_format: "bare" }),
  });
  return ((await res.json()) as { id: string }).id;
}

async function upload(s: RunningServer, id: string): Promise<void> {
  const child = node(UPLOADER, [file, `${s.url}/v2/images/${id}/file`]);
  const code = await new Promise((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`upload exited with ${code}`);
}

async function webImport(s: RunningServer, id: string, uri: string): Promise<void> {
  const res = await fetch(`${s.url}/v2/images/${id}/import`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ method: { name: "web-download", uri } }),
  });
  if (res.status !== 202) throw new Error(`import: ${res.status} ${await res.text()}`);
  for (;;) {
    const img = (await (await fetch(`${s.url}/v2/images/${id}`)).json()) as Record<string, unknown>;
    if (img.status === "active" && !("os_glance_import_task" in img)) return;
    if (img.status === "queued") throw new Error(`import failed: ${JSON.stringify(img)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function main(): Promise<void> {
  const size = (await stat(file)).size;
  const src = await fileServer();
  const up: number[] = [];
  const imp: number[] = [];
  try {
    for (let r = 0; r < Number(opt.rounds); r++) {
      for (const kind of ["upload", "import"] as const) {
        const { server: s, stop } = await fresh(src.port);
        try {
          const id = await newImage(s);
          const t0 = process.hrtime.bigint();
          if (kind === "upload") await upload(s, id);
          else await webImport(s, id, `${src.url}/${opt.image}`);
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          (kind === "upload" ? up : imp).push(mbps(size, secs));
          log(`round ${r + 1} ${kind}: ${mbps(size, secs)} MB/s`);
        } finally {
          await stop();
        }
      }
    }
  } finally {
    src.close();
  }
  process.stdout.write(
    `${JSON.stringify({
      image: opt.image,
      bytes: size,
      rounds: up.length,
      uploadMBps: median(up),
      webDownloadImportMBps: median(imp),
      importOverUpload: ratio(median(imp), median(up)),
    })}\n`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
