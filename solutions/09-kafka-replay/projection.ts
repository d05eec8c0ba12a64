import type { StockMovement } from './events.ts';

export interface StockChange {
  sku: string;
  /** Units added to (positive) or taken from (negative) the shelf. */
  delta: number;
}

/** What one movement does to the stock on the shelf. */
export function stockChange(movement: StockMovement): StockChange {
  switch (movement.type) {
    case 'stock.received':
      return { sku: movement.sku, delta: movement.quantity };
    case 'stock.shipped':
      return { sku: movement.sku, delta: -movement.quantity };
    case 'stock.returned':
      // Returned goods are back on the shelf.
      return { sku: movement.sku, delta: movement.quantity };
  }
}
