/**
 * The logger of a server process (server.ts, cluster-primary.ts): pino's JSON lines on the
 * stdout destination, with the time in ISO 8601 and the level by name. Log shippers (journald
 * through systemd, Loki, Elasticsearch) and people reading `journalctl` take "info" and a UTC
 * timestamp as they are; pino's defaults (30, milliseconds since 1970) need a mapping in each.
 */
import pino, { type Logger } from "pino";
import type { LogDestination } from "./log-destination.js";

export function serverLogger(level: string, base: Record<string, unknown>, dest?: LogDestination): Logger {
  return pino(
    {
      level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (line) => dest?.write(line) },
  );
}
