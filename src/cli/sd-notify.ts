/**
 * Telling systemd how `tessera serve` is doing, for a unit of `Type=notify`
 * (contrib/systemd/tessera.service): READY=1 once the node listens, STOPPING=1 when its
 * shutdown begins. Under anything else (no NOTIFY_SOCKET) it does nothing.
 *
 * The protocol is one datagram on the unix socket named by NOTIFY_SOCKET, and Node cannot
 * send one: node:dgram has no AF_UNIX and node:net speaks streams only; the npm modules that
 * can are native code to compile or download for every platform. So this runs systemd's own
 * `systemd-notify`, which sends under its own pid: the unit needs `NotifyAccess=all` (with
 * `main`, systemd ignores a message from any process but the main one). `all` lets in what the
 * service's own control group sends, which holds nothing but Tessera's processes and the
 * qemu-img it runs. `systemd-notify` waits (sd_notify_barrier) until systemd has read the
 * message, so that the message is attributed to the unit while its sender still exists.
 */
import { execFile } from "node:child_process";
import type { Logger } from "pino";

export interface Notifier {
  /** Sends `VAR=value` assignments (READY=1, STOPPING=1, STATUS=...); never throws. */
  notify(log: Logger, ...assignments: string[]): Promise<void>;
}

/**
 * This process's notifier. Takes NOTIFY_SOCKET out of the environment, as sd_notify's
 * `unset_environment` does: the workers and every other child must not speak for the service.
 */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const socket = env.NOTIFY_SOCKET;
  delete env.NOTIFY_SOCKET;
  if (!socket) return { notify: async () => {} };
  return {
    notify: (log, ...assignments) =>
      new Promise((resolve) => {
        execFile(
          "systemd-notify",
          assignments,
          { env: { ...env, NOTIFY_SOCKET: socket }, timeout: 10_000 },
          (err, _out, stderr) => {
            // Not fatal: without READY=1 systemd fails the start after TimeoutStartSec, saying why.
            if (err)
              log.warn({ err: err.message, stderr: stderr.trim(), assignments }, "systemd-notify failed");
            resolve();
          },
        );
      }),
  };
}
