/**
 * The object backend on S3-compatible object storage (Ceph RGW, MinIO, AWS S3, ...). Objects
 * are keys under `prefix` in one bucket; a put is one PutObject, or a multipart upload above
 * the part size (an unfinished multipart upload is invisible, so puts stay atomic). No retries
 * and no concurrency limits here: those are wrappers (retrying-backend.ts, limited-backend.ts)
 * around any backend. Errors come out typed: a missing key is NotFoundError, a range past the
 * end CorruptDataError, and anything a retry may cure (network, 5xx, throttling) is
 * BackendUnavailableError.
 */
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { BackendUnavailableError, CorruptDataError, NotFoundError } from "../errors.js";
import { assertValidName, type ObjectBackend, type ObjectInfo } from "./backend.js";

export interface S3BackendOptions {
  /** e.g. http://127.0.0.1:7480; omitted for AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Key prefix for every object, e.g. "tessera/" (default none). */
  prefix?: string;
  /** Bucket in the path, not the host name: what RGW, MinIO and s3rver on loopback need. */
  forcePathStyle?: boolean;
  /** Credentials; when omitted, the AWS SDK's chain (AWS_ACCESS_KEY_ID, ..., profiles). */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Objects larger than this are sent as multipart uploads of this part size (≥ 5 MiB). */
  partSize?: number;
  /** Sockets to the endpoint (the concurrency wrapper decides how many requests run). */
  maxSockets?: number;
}

const MiB = 1024 * 1024;
export const DEFAULT_PART_SIZE = 64 * MiB;

export class S3Backend implements ObjectBackend {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;

  constructor(o: S3BackendOptions) {
    this.bucket = o.bucket;
    this.prefix = o.prefix ?? "";
    this.partSize = Math.max(5 * MiB, o.partSize ?? DEFAULT_PART_SIZE);
    const sockets = { keepAlive: true, maxSockets: o.maxSockets ?? 64 };
    this.client = new S3Client({
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      region: o.region,
      forcePathStyle: o.forcePathStyle ?? false,
      ...(o.accessKeyId && o.secretAccessKey
        ? {
            credentials: {
              accessKeyId: o.accessKeyId,
              secretAccessKey: o.secretAccessKey,
              ...(o.sessionToken ? { sessionToken: o.sessionToken } : {}),
            },
          }
        : {}),
      // Retries belong to the wrapper, where they are counted and bounded in one place.
      maxAttempts: 1,
      // The SDK's default flexible checksums send aws-chunked bodies: s3rver stores the framing
      // as data and radosgw refuses them (411). Ids in the packs make checksums redundant anyway.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: new NodeHttpHandler({
        httpAgent: new HttpAgent(sockets),
        httpsAgent: new HttpsAgent(sockets),
      }),
    });
  }

  private key(name: string): string {
    assertValidName(name);
    return this.prefix + name;
  }

  async put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    const Key = this.key(name);
    const body = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
    await s3Call(name, async () => {
      if (body.length <= this.partSize) {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body: body }));
        return;
      }
      await this.multipart(Key, body);
    });
  }

  private async multipart(Key: string, body: Uint8Array): Promise<void> {
    const { UploadId } = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }),
    );
    try {
      const Parts: { ETag: string | undefined; PartNumber: number }[] = [];
      for (let at = 0, n = 1; at < body.length; at += this.partSize, n++) {
        const part = body.subarray(at, at + this.partSize);
        const r = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: n, Body: part }),
        );
        Parts.push({ ETag: r.ETag, PartNumber: n });
      }
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts },
        }),
      );
    } catch (e) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }))
        .catch(() => {});
      throw e;
    }
  }

  async get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const Key = this.key(name);
    if (length === 0) {
      if (!(await this.stat(name))) throw new NotFoundError(`object ${name}`);
      return Buffer.alloc(0);
    }
    return s3Call(name, async () => {
      let res: GetObjectCommandOutput;
      try {
        res = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${offset}-${offset + length - 1}` }),
        );
      } catch (e) {
        if (status(e) === 416) throw new CorruptDataError(`object ${name} ends before ${offset + length}`);
        throw e;
      }
      const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      for await (const piece of res.Body as AsyncIterable<Uint8Array>) {
        if (got + piece.length > length)
          throw new CorruptDataError(`object ${name}: more bytes than the range asked`);
        buf.set(piece, got);
        got += piece.length;
      }
      if (got < length) throw new CorruptDataError(`object ${name} ends before ${offset + length}`);
      return buf;
    });
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    const Key = this.key(name);
    try {
      return await s3Call(name, async () => {
        const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
        return { name, size: r.ContentLength ?? 0 };
      });
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  async delete(name: string): Promise<void> {
    const Key = this.key(name);
    await s3Call(name, async () => {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let ContinuationToken: string | undefined;
    do {
      const page = await s3Call(prefix, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken }),
        ),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { name: o.Key.slice(this.prefix.length), size: o.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
]);

/** Runs one S3 call and types its failure. */
async function s3Call<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof NotFoundError || e instanceof CorruptDataError) throw e;
    const code = status(e);
    const err = e as { name?: string; code?: string; message?: string };
    if (code === 404 || err.name === "NoSuchKey" || err.name === "NotFound")
      throw new NotFoundError(`object ${name}`);
    const network = code === undefined && (NETWORK_CODES.has(err.code ?? "") || err.name === "TimeoutError");
    if (network || code === 429 || code === 408 || (code !== undefined && code >= 500)) {
      throw new BackendUnavailableError(
        `S3 ${name}: ${err.name ?? "error"} ${code ?? err.code ?? ""} ${err.message ?? ""}`.trim(),
        e,
      );
    }
    throw e;
  }
}
