import type { StockMovement } from './events.ts';

export interface StockChange {
  sku: string;
  /** Units added to (positive) or taken from (negative) the shelf. */
  delta: number;
}

/** What one movement does to the stock on the shelf. */
export function stockChange(movement: StockMovement): StockChange {
  // TODO: this is the projection as it shipped, and it has a bug. Since it went live, product
  // pages show some items as sold out while the warehouse has them on the shelf, and the gap
  // grows every week. Find the bug and fix it; then rebuild the levels by replaying the ledger
  // (projector.ts), since every level computed so far is wrong.
  switch (movement.type) {
    case 'stock.received':
      return { sku: movement.sku, delta: movement.quantity };
    case 'stock.shipped':
    case 'stock.returned':
      // Both are goods moving for a customer's order.
      return { sku: movement.sku, delta: -movement.quantity };
  }
}
