/**
 * Ways Node can put a file's bytes on a socket, served from this process to curl: the ceiling
 * of Tessera's download path without the engine (no catalog, no checks), measured beside it.
 *
 *   pipe          createReadStream(file).pipe(res): what most Node servers do
 *   http-pooled   node:http, reads into POOL reused buffers of PIECE bytes, each written with a
 *                 callback that returns it to the pool (Tessera's download path)
 *   http-socket   the same, but once node:http has sent the head, the body goes to its socket
 *   net-pooled    the same over a raw net.Socket, the HTTP head written by hand
 */
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { createServer as createHttpServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";

type Sink = ServerResponse | Socket;

/** Streams `path` into `out` from `pool` buffers of `piece` bytes each, reused once written. */
async function pooled(path: string, out: Sink, pool: number, piece: number, end = true): Promise<void> {
  const fh = await open(path, "r");
  const idle: Buffer[] = Array.from({ length: pool }, () => Buffer.allocUnsafeSlow(piece));
  let wake: (() => void) | undefined;
  try {
    for (let pos = 0; ; ) {
      while (idle.length === 0) await new Promise<void>((r) => (wake = r));
      const buf = idle.pop() as Buffer;
      const { bytesRead } = await fh.read(buf, 0, piece, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      out.write(buf.subarray(0, bytesRead), () => {
        idle.push(buf);
        wake?.();
      });
    }
  } finally {
    await fh.close();
  }
  if (end) out.end();
}

export type WriterName = "pipe" | "http-pooled" | "http-socket" | "net-pooled";

/** Starts one of the writers serving `path` on 127.0.0.1; resolves with its URL and a stop. */
export async function startWriter(
  name: WriterName,
  path: string,
  pool = 4,
  piece = 4 * 1024 * 1024,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const size = (await stat(path)).size;
  let server: Server | NetServer;
  if (name === "net-pooled") {
    server = createNetServer((sock) => {
      sock.once("data", () => {
        sock.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
        );
        pooled(path, sock, pool, piece).catch(() => sock.destroy());
      });
    });
  } else {
    server = createHttpServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
      if (name === "pipe") createReadStream(path).pipe(res);
      else if (name === "http-pooled") pooled(path, res, pool, piece).catch(() => res.destroy());
      else {
        res.flushHeaders();
        pooled(path, res.socket as Socket, pool, piece, false)
          .then(() => res.end())
          .catch(() => res.destroy());
      }
    });
  }
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
