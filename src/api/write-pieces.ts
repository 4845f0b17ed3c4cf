import type { ServerResponse } from "node:http";
import type { ReadPiece } from "../engine/read.js";

/**
 * Streams read pieces to the response with backpressure, releasing each piece's buffer once
 * the socket is done with it. Stops reading (and its read-ahead) as soon as the client goes.
 */
export async function writePieces(body: AsyncGenerator<ReadPiece>, out: ServerResponse): Promise<void> {
  let gone = false;
  const onClose = () => {
    gone = true;
  };
  out.once("close", onClose);
  try {
    for await (const piece of body) {
      if (gone) throw new Error("the client went away");
      const ok = out.write(piece.bytes, () => piece.release());
      if (!ok && !gone) {
        await new Promise<void>((resolve) => {
          const done = () => {
            out.off("drain", done);
            out.off("close", done);
            resolve();
          };
          out.on("drain", done);
          out.on("close", done);
        });
      }
    }
    if (gone) throw new Error("the client went away");
    out.end();
  } finally {
    out.off("close", onClose);
    await body.return(undefined);
  }
}
