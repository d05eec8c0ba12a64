import type { OrderLine } from './events.ts';

/**
 * The shop's pricing rule, owned by whoever owns orders (the monolith today, the orders service
 * once orders are strangled): ten items or more in one order get 10% off, rounded to the cent.
 */
export const VOLUME_DISCOUNT_ITEMS = 10;

export function orderTotalCents(lines: readonly OrderLine[]): number {
  const subtotal = lines.reduce((sum, line) => sum + line.quantity * line.unitPriceCents, 0);
  const items = lines.reduce((sum, line) => sum + line.quantity, 0);
  return items >= VOLUME_DISCOUNT_ITEMS ? Math.round(subtotal * 0.9) : subtotal;
}
