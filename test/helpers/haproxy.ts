/**
 * Debian's HAProxy in front of several servers, for cluster tests: bench/haproxy.ts (one copy
 * for the tests and bench/cluster.ts) on a loopback port from freePorts, below the ephemeral
 * range, so that no outgoing connection of another test takes it before HAProxy binds it.
 */
import { type Haproxy, type HaproxyOptions, startHaproxyOn } from "../../bench/haproxy.js";
import { freePorts } from "./ports.js";

export {
  HAPROXY,
  type Haproxy,
  type HaproxyOptions,
  haproxyConfig,
  haveHaproxy,
} from "../../bench/haproxy.js";

/** Starts HAProxy and resolves once every backend has answered a request through it. */
export async function startHaproxy(o: HaproxyOptions): Promise<Haproxy> {
  return startHaproxyOn(await freePorts(1), o);
}
