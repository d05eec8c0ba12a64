import type { OrderEvent, OrderLine } from './events.ts';

/**
 * The inventory service's view: how many units of each SKU open orders hold. Applying events out
 * of order corrupts it (an amendment before its order, a cancellation before the order it cancels),
 * which is why all events of one order must travel through one partition.
 */
export class Reservations {
  private readonly byOrder = new Map<string, OrderLine[]>();

  apply(event: OrderEvent): void {
    switch (event.type) {
      case 'order.placed':
      case 'order.amended':
        this.byOrder.set(event.orderId, event.lines);
        break;
      case 'order.cancelled':
        this.byOrder.delete(event.orderId);
        break;
    }
  }

  /** Units reserved per SKU across all open orders. */
  reservedBySku(): Record<string, number> {
    const totals: Record<string, number> = {};
    for (const lines of this.byOrder.values()) {
      for (const { sku, quantity } of lines) totals[sku] = (totals[sku] ?? 0) + quantity;
    }
    return totals;
  }
}
