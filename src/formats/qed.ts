/**
 * QED: recognised so that it can be refused. No cloud boots it, qemu deprecated it, and it has
 * backing files of its own; Glance bans it outright.
 */
import { Inspector, startsWith, u64 } from "./inspector.js";

export class QedInspector extends Inspector {
  readonly format = "qed";
  private readonly header = this.region(0, 64);

  protected step(): void {
    const h = this.header;
    if (!this.headerReady(h, 4, (b) => startsWith(b, "QED\0"))) return;
    this.violate("qed-banned", "the QED format is not accepted");
    this.virtualSize = u64(h.data, 48, "le");
  }
}
