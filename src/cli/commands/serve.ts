/** `tessera serve`: the API server in the foreground, until SIGTERM or SIGINT. */
import { startServer } from "../../api/server.js";
import { type Command, configOf } from "../command.js";

export const serve: Command = {
  name: "serve",
  usage: `  tessera serve [--host H] [--port P] [--data DIR] [--config FILE]
                                              serve the Glance Images API v2 (default 127.0.0.1:9292,
                                              ./data); docs/configuration.md lists every setting`,
  async run({ values }) {
    const server = await startServer(configOf(values));
    let signals = 0;
    const stop = (signal: string) => {
      // A second signal means "now": skip the grace period.
      if (++signals > 1) process.exit(1);
      server.logger.info({ signal }, "signal received");
      server.close().then(
        () => process.exit(0),
        (err) => {
          server.logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  },
};
