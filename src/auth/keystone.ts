/**
 * `keystone` mode: X-Auth-Token validated against Keystone v3 (GET /v3/auth/tokens with the
 * token as X-Subject-Token), authorised by a service user's own token, as keystonemiddleware
 * does for Glance. Project, user and roles come from the validated token.
 *
 * Validations are cached for at most `cacheSeconds` and never past the token's expiry, so a
 * revoked token stops working within that bound, and a cached request costs a hash and a map
 * lookup. Tokens Keystone refuses are cached too (as refused), so a client retrying a bad
 * token cannot turn each request into a Keystone call. Concurrent validations of one token
 * share one call. Keystone unreachable is a 503, never a guess.
 */
import { passwordToken } from "../keystone-password.js";
import { type Authenticator, type AuthRequest, tokenDigest } from "./authenticator.js";
import { AuthUnavailableError, makeContext, type RequestContext, UnauthorizedError } from "./context.js";

export interface KeystoneOptions {
  /** Keystone's v3 endpoint, e.g. http://127.0.0.1:5000/v3. */
  url: string;
  /** The service user that may validate tokens (Keystone's service or admin role). */
  username: string;
  password: string;
  projectName: string;
  userDomain?: string;
  projectDomain?: string;
  /** Longest a validation is reused: the bound on how late a revocation takes effect. */
  cacheSeconds?: number;
  /** Most validations kept (the oldest go first). */
  cacheEntries?: number;
  /** Per call to Keystone. */
  timeoutMs?: number;
}

/** Tries per validation call (Keystone busy or restarting). */
const ATTEMPTS = 3;

interface Cached {
  ctx?: RequestContext;
  until: number;
}

interface TokenBody {
  token?: {
    expires_at?: string;
    project?: { id?: string };
    user?: { id?: string };
    roles?: { name?: string }[];
  };
}

export class KeystoneAuth implements Authenticator {
  readonly mode = "keystone";
  readonly realm: string;
  private readonly url: string;
  private readonly cacheMs: number;
  private readonly cacheEntries: number;
  private readonly timeoutMs: number;
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<RequestContext | undefined>>();
  private service?: { token: string; until: number };
  private serviceLogin?: Promise<string>;
  /** Calls made to Keystone to validate a token (for tests and metrics). */
  validations = 0;

  constructor(private readonly opts: KeystoneOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    this.realm = `Keystone uri="${this.url.replace(/\/v3$/, "")}"`;
    this.cacheMs = (opts.cacheSeconds ?? 60) * 1000;
    this.cacheEntries = opts.cacheEntries ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async authenticate(req: AuthRequest): Promise<RequestContext> {
    const token = req.header("x-auth-token");
    if (!token) throw new UnauthorizedError();
    const key = tokenDigest(token);
    const hit = this.cache.get(key);
    const now = Date.now();
    if (hit && hit.until > now) {
      if (!hit.ctx) throw new UnauthorizedError();
      return hit.ctx;
    }
    let call = this.pending.get(key);
    if (!call) {
      call = this.validate(token, key).finally(() => this.pending.delete(key));
      this.pending.set(key, call);
    }
    const ctx = await call;
    if (!ctx) throw new UnauthorizedError();
    return ctx;
  }

  private remember(key: string, entry: Cached): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    while (this.cache.size > this.cacheEntries) {
      const oldest = this.cache.keys().next().value as string;
      this.cache.delete(oldest);
    }
  }

  private async validate(token: string, key: string): Promise<RequestContext | undefined> {
    let res = await this.call(token, await this.serviceToken());
    if (res.status === 401) {
      // The service token expired or was revoked: log in again, once.
      this.service = undefined;
      res = await this.call(token, await this.serviceToken());
    }
    const now = Date.now();
    if (res.status === 404 || res.status === 401) {
      this.remember(key, { until: now + this.cacheMs });
      return undefined;
    }
    if (res.status !== 200) {
      throw new AuthUnavailableError(`Keystone answered ${res.status} validating a token`);
    }
    const body = parseBody(res.text);
    const t = body.token;
    const expires = Date.parse(t?.expires_at ?? "");
    if (!t || !(expires > now)) {
      this.remember(key, { until: now + this.cacheMs });
      return undefined;
    }
    const roles = (t.roles ?? []).map((r) => r.name ?? "");
    const ctx = makeContext(t.project?.id ?? null, t.user?.id ?? null, roles);
    this.remember(key, { ctx, until: Math.min(now + this.cacheMs, expires) });
    return ctx;
  }

  /** One validation call (retried as keystone() retries). */
  private call(token: string, serviceToken: string): Promise<KeystoneAnswer> {
    this.validations++;
    return this.keystone(`${this.url}/auth/tokens?nocatalog`, {
      headers: { "X-Auth-Token": serviceToken, "X-Subject-Token": token, Accept: "application/json" },
    });
  }

  /**
   * A request to Keystone, whole body read, tried up to three times when it does not answer or
   * answers 5xx (as keystonemiddleware's http_request_max_retries): a busy Keystone is not an
   * outage. A kept-alive connection the server closed just as the request went out (uwsgi's
   * --http-socket closes them without a word) is tried again at once, once, without counting.
   */
  private async keystone(url: string, init: RequestInit): Promise<KeystoneAnswer> {
    let reconnected = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
        const text = await res.text();
        if (res.status < 500 || attempt === ATTEMPTS)
          return { status: res.status, headers: res.headers, text };
      } catch (e) {
        if (!reconnected && droppedConnection(e)) {
          reconnected = true;
          attempt--;
          continue;
        }
        if (attempt === ATTEMPTS) throw new AuthUnavailableError(`Keystone at ${this.url} did not answer`, e);
      }
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }

  /** The service user's token, fetched when missing or within a minute of its expiry. */
  private async serviceToken(): Promise<string> {
    if (this.service && this.service.until > Date.now() + 60_000) return this.service.token;
    if (!this.serviceLogin) {
      this.serviceLogin = this.login().finally(() => {
        this.serviceLogin = undefined;
      });
    }
    return this.serviceLogin;
  }

  private async login(): Promise<string> {
    const o = this.opts;
    const send = (u: string, init: RequestInit) => this.keystone(u, init);
    const { answer: res, token } = await passwordToken(send, this.url, o, { catalog: false });
    const parsed = res.status === 201 ? parseBody(res.text) : undefined;
    if (!token) {
      // Wrong service credentials are the operator's to fix: every request gets a 503 until then.
      throw new AuthUnavailableError(`Keystone refused the service user ${o.username} (${res.status})`);
    }
    const until = Date.parse(parsed?.token?.expires_at ?? "") || Date.now() + 600_000;
    this.service = { token, until };
    return token;
  }
}

/** Keystone's answer, its body read within the retries. */
interface KeystoneAnswer {
  status: number;
  headers: Headers;
  text: string;
}

function parseBody(text: string): TokenBody {
  try {
    return JSON.parse(text) as TokenBody;
  } catch (e) {
    throw new AuthUnavailableError("Keystone answered with a body that is not JSON", e);
  }
}

/** A connection reset or closed under a request (not a timeout, not a refusal). */
function droppedConnection(e: unknown): boolean {
  const cause = (e as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return (
    cause?.code === "ECONNRESET" ||
    cause?.code === "UND_ERR_SOCKET" ||
    /other side closed/.test(cause?.message ?? "")
  );
}
