/**
 * A small HTTP server on 127.0.0.1 for web-download tests: serves registered paths (bytes,
 * redirects, slow or endless bodies) and counts the requests it receives.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DEFAULT_IMPORT_FILTER, type ImportFilter } from "../../src/images/web-source.js";

export type Route =
  | { kind: "bytes"; data: Buffer }
  | { kind: "redirect"; to: string }
  | { kind: "slow"; data: Buffer; pieceBytes: number; everyMs: number }
  | { kind: "stall"; first: Buffer }
  | { kind: "endless" };

export interface WebServer {
  url: string;
  port: number;
  routes: Map<string, Route>;
  hits: string[];
  close(): Promise<void>;
}

export async function startWebServer(): Promise<WebServer> {
  const routes = new Map<string, Route>();
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? "");
    const route = routes.get(req.url ?? "");
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    switch (route.kind) {
      case "bytes":
        res.writeHead(200, { "Content-Length": route.data.length }).end(route.data);
        return;
      case "redirect":
        res.writeHead(302, { Location: route.to }).end();
        return;
      case "slow": {
        res.writeHead(200, { "Content-Length": route.data.length });
        let at = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          res.write(route.data.subarray(at, at + route.pieceBytes));
          at += route.pieceBytes;
          if (at >= route.data.length) {
            clearInterval(timer);
            res.end();
          }
        }, route.everyMs);
        res.on("close", () => clearInterval(timer));
        return;
      }
      case "stall":
        res.writeHead(200);
        res.write(route.first);
        return; // and never another byte
      case "endless": {
        res.writeHead(200);
        const piece = Buffer.alloc(1024 * 1024, 7);
        const more = () => {
          while (!res.destroyed && res.write(piece)) {}
          if (!res.destroyed) res.once("drain", more);
        };
        more();
        return;
      }
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    routes,
    hits,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Test-only: an import filter whose one allowed source is `web` (http, 127.0.0.1, its port). */
export function onlyFrom(web: WebServer): ImportFilter {
  return {
    ...DEFAULT_IMPORT_FILTER,
    allowedSchemes: ["http"],
    allowedHosts: ["127.0.0.1"],
    allowedPorts: [web.port],
  };
}
