/**
 * `qemu-img convert`, run the way a service must run it on hostile input: the source format
 * always given (never probed, so a raw image cannot pose as qcow2), both formats from a fixed
 * list (never a string from a client on the command line), in an empty working directory,
 * and under prlimit's CPU-time and address-space limits as Glance runs qemu-img.
 */
import { spawn } from "node:child_process";
import { TesseraError } from "../errors.js";

/** Formats qemu-img may read or write here, by Glance disk_format name → qemu-img's name. */
export const QEMU_FORMATS: Record<string, string> = {
  raw: "raw",
  qcow2: "qcow2",
  vmdk: "vmdk",
  vhd: "vpc",
  vhdx: "vhdx",
  vdi: "vdi",
};

export interface ConversionLimits {
  /** CPU seconds qemu-img may use (prlimit --cpu). */
  cpuSeconds: number;
  /** Address space qemu-img may map, bytes (prlimit --as). */
  addressSpaceBytes: number;
}

export const DEFAULT_CONVERSION_LIMITS: ConversionLimits = {
  cpuSeconds: 3600,
  addressSpaceBytes: 2 * 1024 ** 3,
};

export class ConversionError extends TesseraError {
  constructor(message: string) {
    super("conversion_failed", message);
  }
}

const STDERR_KEEP = 4096;

export async function qemuImgConvert(o: {
  source: string;
  from: string;
  target: string;
  to: string;
  cwd: string;
  limits: ConversionLimits;
}): Promise<void> {
  const from = QEMU_FORMATS[o.from];
  const to = QEMU_FORMATS[o.to];
  if (!from) throw new ConversionError(`cannot convert from ${o.from}`);
  if (!to) throw new ConversionError(`cannot convert to ${o.to}`);
  const args = [
    `--cpu=${o.limits.cpuSeconds}`,
    `--as=${o.limits.addressSpaceBytes}`,
    "--",
    "qemu-img",
    "convert",
    "-q",
    "-f",
    from,
    "-O",
    to,
    o.source,
    o.target,
  ];
  const child = spawn("prlimit", args, { cwd: o.cwd, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_KEEP) stderr += d.toString("utf8").slice(0, STDERR_KEEP - stderr.length);
  });
  const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.on("error", (e) =>
        reject(new ConversionError(`cannot run qemu-img under prlimit: ${e.message}`)),
      );
      child.on("close", (code, signal) => resolve({ code, signal }));
    },
  );
  if (code !== 0) {
    // SIGXCPU/SIGKILL: the CPU limit; an allocation failure shows on stderr.
    const why = signal ? `killed by ${signal}` : `exit status ${code}`;
    throw new ConversionError(`qemu-img convert ${o.from} → ${o.to} failed (${why}): ${stderr.trim()}`);
  }
}
