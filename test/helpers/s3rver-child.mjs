// Runs s3rver (npm) on 127.0.0.1 for the tests, in its own process so that a test can stop it
// mid-request. Started with --openssl-legacy-provider (s3rver's ListObjectsV2 paging needs it).
// argv: directory, bucket, port (0: any). Prints {"port": N} once listening.
import S3rver from "s3rver";

const [directory, bucket, port] = process.argv.slice(2);
const server = new S3rver({
  address: "127.0.0.1",
  port: Number(port),
  directory,
  silent: true,
  configureBuckets: [{ name: bucket }],
});
const addr = await server.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
