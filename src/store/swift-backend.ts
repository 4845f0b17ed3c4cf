/**
 * OpenStack Swift through its native API, the way Glance's swift store talks to it: a token
 * from tempauth (auth v1) or Keystone v3 (a service user; the storage URL from the catalog unless
 * configured), one container per store (created if missing) with an optional name prefix.
 *
 * Packs up to `segmentSize` are one PUT; larger ones go up as segments (in the container
 * "<container>_segments") under a static large object manifest, which Swift serves, ranges and
 * sizes as one object. Writes are create-only (`If-None-Match: *`): an object that is already
 * there keeps its bytes (the same bytes, by the backend contract). An expired token (401) is
 * replaced once and the request retried; network failures and 5xx/429 are BackendUnavailable
 * for the retry wrapper, as with S3. HTTP is Node's own fetch.
 */
import { createHash } from "node:crypto";
import { BackendUnavailableError, CorruptDataError, NotFoundError, TesseraError } from "../errors.js";
import {
  catalogEndpoint,
  type KeystonePassword,
  passwordToken,
  type TokenBody,
} from "../keystone-password.js";
import { assertValidName, type ObjectBackend, type ObjectInfo } from "./backend.js";

/** With Keystone v3 (authVersion 3), the service user and its project are KeystonePassword's. */
export interface SwiftBackendOptions extends KeystonePassword {
  /** tempauth's /auth/v1.0 URL, or Keystone's v3 URL (with authVersion 3). */
  authUrl: string;
  authVersion?: 1 | 3;
  /** auth v1: the account:user and key. */
  user?: string;
  key?: string;
  /** Keystone v3: which object-store endpoint of the catalog (default public, any region). */
  region?: string;
  interface?: "public" | "internal" | "admin";
  /** The account's storage URL, instead of the one auth gives. */
  storageUrl?: string;
  container: string;
  /** Object name prefix inside the container, e.g. "tessera/". */
  prefix?: string;
  /** Objects larger than this go up as segments of this size under a static large object. */
  segmentSize?: number;
  /** Per request. */
  timeoutMs?: number;
  /** Names per listing request (Swift's limit is 10,000). */
  listPageSize?: number;
}

const MiB = 1024 * 1024;
export const DEFAULT_SEGMENT_SIZE = 256 * MiB;

/** A status Swift answers that a retry may cure. */
function transient(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

class SwiftError extends TesseraError {
  constructor(message: string) {
    super("backend_error", message);
  }
}

export class SwiftBackend implements ObjectBackend {
  private readonly prefix: string;
  private readonly segmentSize: number;
  private readonly timeoutMs: number;
  private readonly listPage: number;
  private auth?: { token: string; storageUrl: string };
  private authing?: Promise<{ token: string; storageUrl: string }>;
  private containersReady?: Promise<void>;

  constructor(private readonly o: SwiftBackendOptions) {
    this.prefix = o.prefix ?? "";
    this.segmentSize = Math.max(MiB, o.segmentSize ?? DEFAULT_SEGMENT_SIZE);
    this.timeoutMs = o.timeoutMs ?? 120_000;
    this.listPage = Math.min(10_000, Math.max(1, o.listPageSize ?? 10_000));
  }

  private get segments(): string {
    return `${this.o.container}_segments`;
  }

  /** A token and storage URL, from cache or from the auth service. */
  private async login(): Promise<{ token: string; storageUrl: string }> {
    if (this.auth) return this.auth;
    this.authing ??= (this.o.authVersion === 3 ? this.keystone() : this.tempauth()).finally(() => {
      this.authing = undefined;
    });
    this.auth = await this.authing;
    return this.auth;
  }

  private async tempauth(): Promise<{ token: string; storageUrl: string }> {
    const res = await this.fetch(this.o.authUrl, {
      headers: { "X-Auth-User": this.o.user ?? "", "X-Auth-Key": this.o.key ?? "" },
    });
    await res.body?.cancel();
    const token = res.headers.get("x-auth-token");
    const storageUrl = this.o.storageUrl ?? res.headers.get("x-storage-url");
    if (res.status >= 300 || !token || !storageUrl) {
      throw this.failure(res.status, `Swift auth at ${this.o.authUrl} refused ${this.o.user}`);
    }
    return { token, storageUrl: storageUrl.replace(/\/+$/, "") };
  }

  private async keystone(): Promise<{ token: string; storageUrl: string }> {
    const o = this.o;
    const { answer: res, token } = await passwordToken((u, init) => this.fetch(u, init), o.authUrl, o, {
      catalog: true,
    });
    if (!token) {
      await res.body?.cancel();
      throw this.failure(res.status, `Keystone at ${o.authUrl} refused ${o.username}`);
    }
    const body = (await res.json()) as TokenBody;
    const storageUrl =
      o.storageUrl ?? catalogEndpoint(body, "object-store", o.interface ?? "public", o.region);
    if (!storageUrl) throw new SwiftError("Keystone's catalog has no object-store endpoint for this user");
    return { token, storageUrl: storageUrl.replace(/\/+$/, "") };
  }

  /** fetch with a timeout; network failures are BackendUnavailable. */
  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new BackendUnavailableError(`Swift ${init.method ?? "GET"} ${url}: ${(e as Error).message}`, e);
    }
  }

  private failure(status: number, what: string): Error {
    return transient(status)
      ? new BackendUnavailableError(`${what}: ${status}`)
      : new SwiftError(`${what}: ${status}`);
  }

  /**
   * A request to `path` under the storage URL with the token; a 401 (token expired or revoked)
   * gets a new token and one more try. `body` is a function so that a retry sends it again.
   */
  private async request(
    method: string,
    path: string,
    headers: Record<string, string> = {},
    body?: () => BodyInit,
  ): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const { token, storageUrl } = await this.login();
      const res = await this.fetch(`${storageUrl}/${path}`, {
        method,
        headers: { ...headers, "X-Auth-Token": token },
        body: body?.(),
      });
      if (res.status === 401 && attempt === 0) {
        await res.body?.cancel();
        if (this.auth?.token === token) this.auth = undefined;
        continue;
      }
      return res;
    }
  }

  /** The object's path: container, then prefix and name, each segment escaped. */
  private path(name: string, container = this.o.container): string {
    return `${encodeURIComponent(container)}/${`${this.prefix}${name}`.split("/").map(encodeURIComponent).join("/")}`;
  }

  /** Creates the containers once (PUT is idempotent: 201 or 202). */
  private ready(): Promise<void> {
    this.containersReady ??= (async () => {
      for (const c of [this.o.container, this.segments]) {
        const res = await this.request("PUT", encodeURIComponent(c));
        await res.body?.cancel();
        if (res.status !== 201 && res.status !== 202) {
          throw this.failure(res.status, `Swift could not create container ${c}`);
        }
      }
    })().catch((e) => {
      this.containersReady = undefined;
      throw e;
    });
    return this.containersReady;
  }

  async put(name: string, parts: readonly Uint8Array[]): Promise<void> {
    assertValidName(name);
    await this.ready();
    const size = parts.reduce((n, p) => n + p.length, 0);
    if (size <= this.segmentSize) {
      await this.putOne(this.path(name), parts, size);
      return;
    }
    // A static large object: the segments first (named by the object and their number), then
    // the manifest that makes them one object.
    const manifest: { path: string; etag: string; size_bytes: number }[] = [];
    let index = 0;
    for (const segment of slices(parts, this.segmentSize)) {
      const segSize = segment.reduce((n, p) => n + p.length, 0);
      const segmentName = `${name}/${String(index++).padStart(6, "0")}`;
      const etag = await this.putOne(this.path(segmentName, this.segments), segment, segSize, false);
      // Names are [A-Za-z0-9._-] segments (assertValidName): nothing to escape in the manifest.
      manifest.push({ path: `/${this.segments}/${this.prefix}${segmentName}`, etag, size_bytes: segSize });
    }
    const body = JSON.stringify(manifest);
    const res = await this.request(
      "PUT",
      `${this.path(name)}?multipart-manifest=put`,
      // Unconditional: the segments are written already, so create-only would guard nothing.
      { "Content-Type": "application/json" },
      () => body,
    );
    await res.body?.cancel();
    if (res.status !== 201) throw this.failure(res.status, `Swift PUT ${name} (manifest)`);
  }

  /** One PUT of `parts` as the object at `path`; returns its md5 (Swift's ETag). */
  private async putOne(
    path: string,
    parts: readonly Uint8Array[],
    size: number,
    createOnly = true,
  ): Promise<string> {
    const md5 = createHash("md5");
    for (const p of parts) md5.update(p);
    const etag = md5.digest("hex");
    const res = await this.request(
      "PUT",
      path,
      {
        "Content-Length": String(size),
        "Content-Type": "application/octet-stream",
        // Swift checks the body against it: a corrupted upload is refused, not stored.
        ETag: etag,
        ...(createOnly ? { "If-None-Match": "*" } : {}),
      },
      () => new Blob(parts as Uint8Array<ArrayBuffer>[]),
    );
    await res.body?.cancel();
    if (res.status === 412 && createOnly) {
      // Already there: a PUT retried after it had landed leaves the same bytes (same ETag), and
      // nothing is rewritten. Other bytes under the name are replaced, as the contract says.
      const head = await this.request("HEAD", path);
      await head.body?.cancel();
      if (head.headers.get("etag")?.replace(/"/g, "") === etag) return etag;
      return this.putOne(path, parts, size, false);
    }
    if (res.status !== 201) throw this.failure(res.status, `Swift PUT ${path}`);
    return etag;
  }

  async get(name: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    assertValidName(name);
    if (length === 0) {
      if (!(await this.stat(name))) throw new NotFoundError(`object ${name}`);
      return Buffer.alloc(0);
    }
    const res = await this.request("GET", this.path(name), {
      Range: `bytes=${offset}-${offset + length - 1}`,
    });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new NotFoundError(`object ${name}`);
    }
    if (res.status === 416) {
      await res.body?.cancel();
      throw new CorruptDataError(`object ${name} is shorter than ${offset + length} bytes`);
    }
    if (res.status !== 206 && res.status !== 200) {
      await res.body?.cancel();
      throw this.failure(res.status, `Swift GET ${name}`);
    }
    const bytes = Buffer.from(await res.arrayBuffer());
    // A 200 is the whole object (Swift ignores a range it cannot satisfy in part).
    const got = res.status === 200 ? bytes.subarray(offset, offset + length) : bytes;
    if (got.length !== length)
      throw new CorruptDataError(`object ${name} is shorter than ${offset + length} bytes`);
    if (into && into.length >= length) {
      got.copy(into);
      return into.subarray(0, length);
    }
    return got;
  }

  async stat(name: string): Promise<ObjectInfo | undefined> {
    assertValidName(name);
    const res = await this.request("HEAD", this.path(name));
    await res.body?.cancel();
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.failure(res.status, `Swift HEAD ${name}`);
    return { name, size: Number(res.headers.get("content-length")) };
  }

  async delete(name: string): Promise<void> {
    assertValidName(name);
    const head = await this.request("HEAD", this.path(name));
    await head.body?.cancel();
    if (head.status === 404) return;
    // A large object goes with its segments; a plain one is a plain DELETE (Swift answers
    // multipart-manifest=delete on a plain object with a 200 that deleted nothing).
    const large = head.headers.get("x-static-large-object")?.toLowerCase() === "true";
    const res = await this.request(
      "DELETE",
      `${this.path(name)}${large ? "?multipart-manifest=delete" : ""}`,
    );
    const body = large ? await res.text() : "";
    if (!large) await res.body?.cancel();
    if (res.status !== 204 && res.status !== 200 && res.status !== 404) {
      throw this.failure(res.status, `Swift DELETE ${name}`);
    }
    if (large && /"Response Status":\s*"(?!200)/.test(body)) {
      throw new BackendUnavailableError(`Swift DELETE ${name}: ${body.slice(0, 200)}`);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    await this.ready();
    let marker = "";
    for (;;) {
      const q = new URLSearchParams({
        format: "json",
        prefix: `${this.prefix}${prefix}`,
        limit: String(this.listPage),
      });
      if (marker) q.set("marker", marker);
      const res = await this.request("GET", `${encodeURIComponent(this.o.container)}?${q}`);
      if (res.status === 204) {
        await res.body?.cancel();
        return;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw this.failure(res.status, `Swift list ${this.o.container}`);
      }
      const page = (await res.json()) as { name: string; bytes: number; slo_etag?: string }[];
      for (const o of page) {
        marker = o.name;
        yield { name: o.name.slice(this.prefix.length), size: o.bytes };
      }
      if (page.length < this.listPage) return;
    }
  }

  async close(): Promise<void> {
    this.auth = undefined;
  }
}

/** `parts` cut into consecutive groups of `size` bytes (views, no copies). */
function* slices(parts: readonly Uint8Array[], size: number): Generator<Uint8Array[]> {
  let group: Uint8Array[] = [];
  let room = size;
  for (const p of parts) {
    let at = 0;
    while (at < p.length) {
      const take = Math.min(room, p.length - at);
      group.push(p.subarray(at, at + take));
      at += take;
      room -= take;
      if (room === 0) {
        yield group;
        group = [];
        room = size;
      }
    }
  }
  if (group.length > 0) yield group;
}
