/**
 * The manifest object on the backend (`manifests/XX/ID`): the manifest encoding, then what the
 * catalog's object record knows that the chunks do not (size, chunk count, whole-image hashes),
 * so that a catalog rebuilt from the backend alone still has the md5/sha512 Glance clients check.
 *
 *   manifest bytes | JSON {size, chunkCount, hashes} | u32 JSON length | "TSMO"
 *
 * The manifest id is the BLAKE3 of the manifest bytes only; the record is a trailer.
 */
import { CorruptDataError } from "../errors.js";

const MAGIC = Buffer.from("TSMO");

export interface ManifestObjectRecord {
  size: number;
  chunkCount: number;
  hashes: Record<string, string>;
}

export function encodeManifestObject(manifest: Buffer, record: ManifestObjectRecord): Buffer[] {
  const json = Buffer.from(JSON.stringify(record));
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(json.length, 0);
  MAGIC.copy(tail, 4);
  return [manifest, json, tail];
}

export function decodeManifestObject(bytes: Buffer): { manifest: Buffer; record: ManifestObjectRecord } {
  if (bytes.length < 8 || !bytes.subarray(bytes.length - 4).equals(MAGIC)) {
    throw new CorruptDataError("manifest object trailer missing");
  }
  const jsonLength = bytes.readUInt32LE(bytes.length - 8);
  const jsonStart = bytes.length - 8 - jsonLength;
  if (jsonStart < 0) throw new CorruptDataError("manifest object trailer too long");
  const record = JSON.parse(bytes.subarray(jsonStart, bytes.length - 8).toString("utf8"));
  return { manifest: bytes.subarray(0, jsonStart), record };
}
