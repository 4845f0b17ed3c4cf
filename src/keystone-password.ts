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
