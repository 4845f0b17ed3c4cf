;; The hot loop of the chunker: a 64-bit gear rolling hash over bytes in linear memory that
;; stops at the first byte where (fingerprint & mask) == 0. Hand-written because it is the one
;; loop that every ingested byte passes through (JS: ~0.7 GB/s; this: see docs/benchmarks.md).
;; Compiled by scripts/build-wasm.mjs into gear-scan-wasm.ts; a test checks they match.
;;
;; Memory: bytes [0, 2048) hold the gear table (256 x i64, little endian), written by the
;; host at start-up from params.ts; the host's data buffer follows it.
(module
  (memory (export "memory") 80)
  (global $fp (mut i64) (i64.const 0))

  (func (export "resetFp") (global.set $fp (i64.const 0)))

  ;; Feeds bytes [p, end) into the fingerprint. `maskHi` is the high 32-bit word of the mask
  ;; (its low word is zero). Returns the address just past the byte that satisfied the mask,
  ;; or 0 if none did. The fingerprint is kept across calls, so a scan can resume where the
  ;; data ran out.
  (func (export "scan") (param $p i32) (param $end i32) (param $maskHi i32) (result i32)
    (local $fp i64)
    (local $mask i64)
    (local $end4 i32)
    (local.set $fp (global.get $fp))
    (local.set $mask (i64.shl (i64.extend_i32_u (local.get $maskHi)) (i64.const 32)))
    (local.set $end4 (i32.sub (local.get $end) (i32.const 3)))
    ;; four bytes per iteration while at least four remain
    (block $tail
      (loop $quad
        (br_if $tail (i32.ge_s (local.get $p) (local.get $end4)))
        (local.set $fp (i64.add (i64.shl (local.get $fp) (i64.const 1))
          (i64.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 3)))))
        (if (i64.eqz (i64.and (local.get $fp) (local.get $mask)))
          (then (global.set $fp (local.get $fp))
                (return (i32.add (local.get $p) (i32.const 1)))))
        (local.set $fp (i64.add (i64.shl (local.get $fp) (i64.const 1))
          (i64.load (i32.shl (i32.load8_u offset=1 (local.get $p)) (i32.const 3)))))
        (if (i64.eqz (i64.and (local.get $fp) (local.get $mask)))
          (then (global.set $fp (local.get $fp))
                (return (i32.add (local.get $p) (i32.const 2)))))
        (local.set $fp (i64.add (i64.shl (local.get $fp) (i64.const 1))
          (i64.load (i32.shl (i32.load8_u offset=2 (local.get $p)) (i32.const 3)))))
        (if (i64.eqz (i64.and (local.get $fp) (local.get $mask)))
          (then (global.set $fp (local.get $fp))
                (return (i32.add (local.get $p) (i32.const 3)))))
        (local.set $fp (i64.add (i64.shl (local.get $fp) (i64.const 1))
          (i64.load (i32.shl (i32.load8_u offset=3 (local.get $p)) (i32.const 3)))))
        (if (i64.eqz (i64.and (local.get $fp) (local.get $mask)))
          (then (global.set $fp (local.get $fp))
                (return (i32.add (local.get $p) (i32.const 4)))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $quad)))
    ;; the last 0-3 bytes
    (block $done
      (loop $one
        (br_if $done (i32.ge_s (local.get $p) (local.get $end)))
        (local.set $fp (i64.add (i64.shl (local.get $fp) (i64.const 1))
          (i64.load (i32.shl (i32.load8_u (local.get $p)) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (if (i64.eqz (i64.and (local.get $fp) (local.get $mask)))
          (then (global.set $fp (local.get $fp))
                (return (local.get $p))))
        (br $one)))
    (global.set $fp (local.get $fp))
    (i32.const 0)))
