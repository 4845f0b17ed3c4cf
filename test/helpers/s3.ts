/**
 * Real S3 servers for the tests, on 127.0.0.1: npm s3rver (fast, every run) in a child process
 * the test can stop and restart, and Ceph radosgw when one is running (CI starts it with
 * .ci/ceph-rgw.sh and exports S3_ENDPOINT, S3_KEY, S3_SECRET).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3BackendOptions } from "../../src/store/s3-backend.js";

const CHILD = new URL("./s3rver-child.mjs", import.meta.url).pathname;

export interface S3rver {
  endpoint: string;
  options: S3BackendOptions;
  /** Kills the server at once, as a crash would. */
  kill(): void;
  /** Starts it again on the same port with the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3rver(bucket = "tessera"): Promise<S3rver> {
  const dir = await mkdtemp(join(tmpdir(), "tessera-s3rver-"));
  let child: ChildProcess | undefined;
  const launch = async (port: number): Promise<number> => {
    const c = spawn(process.execPath, ["--openssl-legacy-provider", CHILD, dir, bucket, String(port)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    child = c;
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: c.stdout as NodeJS.ReadableStream });
      rl.once("line", (l) => {
        rl.close();
        resolve(l);
      });
      c.once("exit", (code) => reject(new Error(`s3rver exited with ${code}`)));
    });
    return (JSON.parse(line) as { port: number }).port;
  };
  const port = await launch(0);
  const endpoint = `http://127.0.0.1:${port}`;
  const exited = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  return {
    endpoint,
    options: {
      endpoint,
      region: "us-east-1",
      bucket,
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "S3RVER",
    },
    kill() {
      child?.kill("SIGKILL");
    },
    async restart() {
      await exited();
      await launch(port);
    },
    async stop() {
      child?.kill("SIGKILL");
      await exited();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** radosgw's endpoint and credentials when one runs (CI), with a fresh bucket per call. */
export async function radosgw(): Promise<S3BackendOptions | undefined> {
  const endpoint = process.env.S3_ENDPOINT;
  if (!endpoint) return undefined;
  const options: S3BackendOptions = {
    endpoint,
    region: "us-east-1",
    bucket: `tessera-${randomBytes(6).toString("hex")}`,
    forcePathStyle: true,
    accessKeyId: process.env.S3_KEY ?? "TESTKEY",
    secretAccessKey: process.env.S3_SECRET ?? "TESTSECRET",
  };
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: {
      accessKeyId: options.accessKeyId as string,
      secretAccessKey: options.secretAccessKey as string,
    },
  });
  await client.send(new CreateBucketCommand({ Bucket: options.bucket }));
  client.destroy();
  return options;
}
