import { z } from 'zod';

/** Header names on every warehouse event: consumers route on them without parsing the body. */
export const EVENT_HEADERS = {
  type: 'event-type',
  version: 'event-version',
} as const;

export const MOVEMENT_VERSION = 1;

/**
 * The warehouse ledger: every physical movement of stock, as it happened. Nothing here is a
 * stock level; levels are derived from the ledger, and can be derived again.
 */
interface MovementBase {
  movementId: string;
  sku: string;
  quantity: number;
  /** When it happened (ISO-8601). The message timestamp in the log is set to the same instant. */
  at: string;
}

/** Goods arrived from a supplier. */
export interface StockReceived extends MovementBase {
  type: 'stock.received';
}

/** Goods left for a customer's order. */
export interface StockShipped extends MovementBase {
  type: 'stock.shipped';
  orderId: string;
}

/** A customer sent goods back; they are on the shelf again. */
export interface StockReturned extends MovementBase {
  type: 'stock.returned';
  orderId: string;
}

export type StockMovement = StockReceived | StockShipped | StockReturned;
export type MovementType = StockMovement['type'];

const base = {
  movementId: z.string().min(1),
  sku: z.string().min(1),
  quantity: z.number().int().positive(),
  at: z.iso.datetime({ offset: true }),
};

export const MOVEMENT_BODIES = {
  'stock.received': z.object(base),
  'stock.shipped': z.object({ ...base, orderId: z.string().min(1) }),
  'stock.returned': z.object({ ...base, orderId: z.string().min(1) }),
} satisfies { [T in MovementType]: z.ZodType<Omit<Extract<StockMovement, { type: T }>, 'type'>> };

export function isMovementType(value: string): value is MovementType {
  return Object.hasOwn(MOVEMENT_BODIES, value);
}
