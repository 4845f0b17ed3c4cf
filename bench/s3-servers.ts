/**
 * S3 servers for the benchmarks, started on loopback: s3rver (npm) and Ceph radosgw with a
 * bluestore OSD (.ci/ceph-rgw.sh when Ceph is installed, or the one named by
 * S3_ENDPOINT/S3_KEY/S3_SECRET).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { StoreConfig } from "../src/store/open-store.js";

export interface Target {
  name: string;
  store: StoreConfig;
  stop: () => Promise<void>;
}

export async function startS3rver(scratch: string): Promise<Target> {
  const dir = join(scratch, "s3rver");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const child: ChildProcess = spawn(
    process.execPath,
    ["--openssl-legacy-provider", "test/helpers/s3rver-child.mjs", dir, "bench", "0"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  return {
    name: "s3rver",
    store: s3(`http://127.0.0.1:${port}`, "bench", "S3RVER", "S3RVER"),
    stop: async () => {
      child.kill("SIGKILL");
    },
  };
}

function s3(endpoint: string, bucket: string, key: string, secret: string): StoreConfig {
  return {
    type: "s3",
    endpoint,
    region: "us-east-1",
    bucket,
    forcePathStyle: true,
    accessKeyId: key,
    secretAccessKey: secret,
  };
}

export async function startRadosgw(scratch: string): Promise<Target | undefined> {
  let endpoint = process.env.S3_ENDPOINT;
  let stop = async () => {};
  if (!endpoint) {
    if (spawnSync("sh", ["-c", "command -v radosgw"]).status !== 0) return undefined;
    const dir = join(scratch, "rgw");
    const env = {
      ...process.env,
      OSD_STORE: "bluestore",
      OSD_BYTES: "16G",
      RGW_PORT: "7481",
      MON_PORT: "3301",
    };
    const r = spawnSync(".ci/ceph-rgw.sh", ["start", dir], { env, stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) return undefined;
    endpoint = "http://127.0.0.1:7481";
    stop = async () => {
      spawnSync(".ci/ceph-rgw.sh", ["stop", dir], { env, stdio: "ignore" });
      await rm(dir, { recursive: true, force: true });
    };
  }
  const key = process.env.S3_KEY ?? "TESTKEY";
  const secret = process.env.S3_SECRET ?? "TESTSECRET";
  const bucket = `bench-${Date.now()}`;
  const c = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: key, secretAccessKey: secret },
  });
  await c.send(new CreateBucketCommand({ Bucket: bucket }));
  c.destroy();
  return { name: "radosgw (bluestore)", store: s3(endpoint, bucket, key, secret), stop };
}
