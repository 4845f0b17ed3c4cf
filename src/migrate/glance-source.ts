/**
 * A running Glance, read through its Images API v2 as an admin: every image (Glance lists
 * hidden images only when asked, so two passes), an image's members, its data. Reading only:
 * nothing here changes the Glance it reads.
 */
import { TesseraError } from "../errors.js";

/** An image as Glance's API shows it: its core attributes, and its properties beside them. */
export type GlanceImage = Record<string, unknown> & {
  id: string;
  status: string;
  visibility: string;
  created_at: string;
  updated_at: string;
};

export interface GlanceMember {
  member_id: string;
  status: string;
  created_at: string;
  updated_at: string;
}

/** Glance refused a request, or could not be reached. */
export class GlanceSourceError extends TesseraError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super("glance_source", message);
  }
}

/** How requests to Glance authenticate: headers to send, and a way to renew them after a 401. */
export interface GlanceAuth {
  headers(): Promise<Record<string, string>>;
  /** Asks for new credentials (an expired token); false when there is no way to. */
  renew(): Promise<boolean>;
}

const PAGE = 100;
const TIMEOUT_MS = 60_000;

export class GlanceSource {
  private readonly base: string;

  constructor(
    endpoint: string,
    private readonly auth: GlanceAuth,
  ) {
    // Glance's endpoint may carry a path (behind a proxy); its `next` links are relative to it.
    this.base = endpoint.replace(/\/+$/, "").replace(/\/v2$/, "");
  }

  /** Every image an admin sees: visible ones, then hidden ones, oldest first in each pass. */
  async *images(): AsyncGenerator<GlanceImage> {
    for (const hidden of [false, true]) {
      let next: string | undefined =
        `/v2/images?visibility=all&os_hidden=${hidden}&limit=${PAGE}&sort_key=created_at&sort_dir=asc`;
      while (next) {
        const page = (await (await this.get(next)).json()) as { images: GlanceImage[]; next?: string };
        yield* page.images;
        next = page.next;
      }
    }
  }

  /** One image by id: how Glance shows the images it lists to no one (killed ones). */
  async image(imageId: string): Promise<GlanceImage> {
    return (await (await this.get(`/v2/images/${imageId}`)).json()) as GlanceImage;
  }

  async members(imageId: string): Promise<GlanceMember[]> {
    const res = await this.get(`/v2/images/${imageId}/members`);
    return ((await res.json()) as { members: GlanceMember[] }).members;
  }

  /** The image's data as Glance serves it; undefined when it has none (204). */
  async data(imageId: string): Promise<AsyncIterable<Uint8Array> | undefined> {
    // No timeout on the whole body: a large image streams for as long as it takes (undici's
    // own, on the time between two pieces, ends one that stalls).
    const res = await this.get(`/v2/images/${imageId}/file`, false);
    if (res.status === 204 || !res.body) {
      await res.body?.cancel();
      return undefined;
    }
    return readBody(res, imageId);
  }

  /** GET `path` (under the endpoint), renewing credentials once on a 401; non-2xx throws. */
  private async get(path: string, timeout = true): Promise<Response> {
    for (let renewed = false; ; renewed = true) {
      let res: Response;
      try {
        res = await fetch(`${this.base}${path}`, {
          headers: { Accept: "application/json", ...(await this.auth.headers()) },
          signal: timeout ? AbortSignal.timeout(TIMEOUT_MS) : undefined,
        });
      } catch (e) {
        throw new GlanceSourceError(`Glance GET ${path}: ${reason(e)}`);
      }
      if (res.status === 401 && !renewed && (await this.auth.renew())) {
        await res.body?.cancel();
        continue;
      }
      if (res.status >= 300) {
        const text = (await res.text()).slice(0, 300).replace(/\s+/g, " ");
        throw new GlanceSourceError(`Glance GET ${path}: ${res.status} ${text}`, res.status);
      }
      return res;
    }
  }
}

/**
 * The body of `res`, holding `res` itself until the body is read: undici cancels a response's
 * body stream, silently (the stream just ends), once the Response object is garbage collected:
 * seen here, 4 images of 33 arrived empty when only the stream was kept (the digest check
 * refused them).
 */
async function* readBody(res: Response, imageId: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const piece of res.body as AsyncIterable<Uint8Array>) yield piece;
  } catch (e) {
    throw new GlanceSourceError(`Glance stopped sending image ${imageId}'s data: ${reason(e)}`);
  }
}

/** What undici says of a failure, with its cause ("fetch failed" alone names none). */
function reason(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause?.code ?? err.cause?.message;
  return cause ? `${err.message} (${cause})` : err.message;
}
