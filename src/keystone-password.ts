/**
 * A project-scoped Keystone v3 token by password: what the `keystone` auth mode asks for its
 * service user and the Swift store for its account. It sits beside src/errors.ts, in neither
 * auth/ nor store/, so that both use it without an arrow between them; each sends it over its
 * own transport (retries, timeouts) and words its own failures.
 */

export interface KeystonePassword {
  username?: string;
  password?: string;
  projectName?: string;
  /** Domain ids of the user and the project (default "default"). */
  userDomain?: string;
  projectDomain?: string;
}

/** Keystone's answer as the caller's transport gives it (a fetch Response, or one already read). */
interface Answer {
  status: number;
  headers: Headers;
}

/**
 * Asks Keystone at `url` (its v3 endpoint) for a token; `token` is set when it issued one. The
 * service catalog comes with it only when asked for (Swift finds its storage URL there).
 */
export async function passwordToken<A extends Answer>(
  send: (url: string, init: RequestInit) => Promise<A>,
  url: string,
  who: KeystonePassword,
  options: { catalog: boolean },
): Promise<{ answer: A; token?: string }> {
  const answer = await send(`${url.replace(/\/+$/, "")}/auth/tokens${options.catalog ? "" : "?nocatalog"}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ["password"],
          password: {
            user: { name: who.username, domain: { id: who.userDomain ?? "default" }, password: who.password },
          },
        },
        scope: { project: { name: who.projectName, domain: { id: who.projectDomain ?? "default" } } },
      },
    }),
  });
  const token = answer.status === 201 ? answer.headers.get("x-subject-token") : null;
  return { answer, token: token ?? undefined };
}

/** A token's body as Keystone answers it, as far as its service catalog goes. */
export interface TokenBody {
  token?: {
    catalog?: { type: string; endpoints: { interface: string; region_id?: string; url: string }[] }[];
  };
}

/**
 * The URL of service `type`'s endpoint on interface `iface` (in `region`, if given) in the
 * catalog a token came with, without a trailing slash.
 */
export function catalogEndpoint(
  body: TokenBody,
  type: string,
  iface: string,
  region?: string,
): string | undefined {
  const service = body.token?.catalog?.find((s) => s.type === type);
  const url = service?.endpoints.find(
    (e) => e.interface === iface && (region === undefined || e.region_id === region),
  )?.url;
  return url?.replace(/\/+$/, "");
}
