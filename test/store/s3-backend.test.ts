import { afterAll, beforeAll } from "vitest";
import { S3Backend } from "../../src/store/s3-backend.js";
import { radosgw, type S3rver, startS3rver } from "../helpers/s3.js";
import { runBackendConformance } from "./backend-conformance.js";

let s3rver: S3rver | undefined;
beforeAll(async () => {
  s3rver = await startS3rver();
});
afterAll(async () => {
  await s3rver?.stop();
});

let n = 0;
// Each test gets its own key prefix: a fresh, empty backend in the same bucket.
runBackendConformance("S3 on s3rver (single PUTs)", async () => ({
  backend: new S3Backend({ ...(s3rver as S3rver).options, prefix: `t${n++}/` }),
  dispose: async () => {},
}));
runBackendConformance("S3 on s3rver (multipart above 5 MiB parts)", async () => ({
  backend: new S3Backend({ ...(s3rver as S3rver).options, prefix: `m${n++}/`, partSize: 5 * 1024 * 1024 }),
  dispose: async () => {},
}));

const rgw = process.env.CI && !process.env.S3_ENDPOINT ? "missing" : process.env.S3_ENDPOINT ? "yes" : "no";
if (rgw === "missing") throw new Error("CI must run radosgw (.ci/run starts it and sets S3_ENDPOINT)");
if (rgw === "yes") {
  runBackendConformance("S3 on Ceph radosgw", async () => ({
    backend: new S3Backend({
      ...((await radosgw()) as NonNullable<Awaited<ReturnType<typeof radosgw>>>),
      prefix: "c/",
    }),
    dispose: async () => {},
  }));
} else {
  console.warn(
    "skipping radosgw conformance: no S3_ENDPOINT (start ../shared/tools/ceph-rgw/ceph-rgw.sh and export its env)",
  );
}
