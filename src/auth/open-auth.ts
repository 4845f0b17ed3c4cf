/** The authenticator a configuration asks for (docs/configuration.md, `auth`). */
import { type Authenticator, NoAuth } from "./authenticator.js";
import { KeystoneAuth, type KeystoneOptions } from "./keystone.js";
import { StaticTokens } from "./static-tokens.js";
import { TrustedHeaders } from "./trusted-headers.js";

export type AuthConfig =
  | { mode: "none" }
  | { mode: "tokens"; tokensFile: string }
  | { mode: "trusted-headers"; trustedProxies: string[] }
  | { mode: "keystone"; keystone: KeystoneOptions };

export const AUTH_MODES = ["none", "tokens", "trusted-headers", "keystone"] as const;

export function openAuthenticator(cfg: AuthConfig): Authenticator {
  switch (cfg.mode) {
    case "none":
      return new NoAuth();
    case "tokens":
      return StaticTokens.fromFile(cfg.tokensFile);
    case "trusted-headers":
      return new TrustedHeaders(cfg.trustedProxies);
    case "keystone":
      return new KeystoneAuth(cfg.keystone);
  }
}
