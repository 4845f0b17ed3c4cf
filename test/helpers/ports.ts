import { readFileSync } from "node:fs";
import { createServer } from "node:net";

// A port the kernel hands out (listen(0), or the source port of an outgoing connection) can be
// taken again between our check and the other process's bind: a Swift container server once
// spent its 30 s of retries on a port an outgoing connection held. Ports below the ephemeral
// range are never handed out, so a port found free there stays free unless a test takes it.
function ephemeralStart(): number {
  try {
    const [low] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    return Number(low) || 32768;
  } catch {
    return 32768;
  }
}

const LOW = 10000;
const HIGH = ephemeralStart();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * `count` consecutive TCP ports free on 127.0.0.1 right now, below the kernel's ephemeral range,
 * for servers a test starts in another process. Returns the first.
 */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - count));
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await bindable(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${count} free consecutive ports between ${LOW} and ${HIGH}`);
}

/** A TCP port free on 127.0.0.1 right now, below the ephemeral range (see freePorts). */
export function freePort(): Promise<number> {
  return freePorts(1);
}
