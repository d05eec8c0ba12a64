import type { OrderLine } from './events.ts';

/**
 * The request bodies of the shop's API, checked by hand: the contract every implementation of an
 * endpoint (the monolith's and the service's) accepts and refuses in the same way.
 */

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface SignUp {
  email: string;
  name: string;
  password: string;
}

export function checkSignUp(body: unknown): Checked<SignUp> {
  const { email, name, password } = (body ?? {}) as Record<string, unknown>;
  if (typeof email !== 'string' || !EMAIL.test(email)) return { ok: false, error: 'email must be an email address' };
  if (typeof name !== 'string' || name.trim() === '' || name.length > 200) return { ok: false, error: 'name must be 1 to 200 characters' };
  if (typeof password !== 'string' || password.length < 8) return { ok: false, error: 'password must be at least 8 characters' };
  return { ok: true, value: { email: email.toLowerCase(), name: name.trim(), password } };
}

export interface Credentials {
  email: string;
  password: string;
}

export function checkCredentials(body: unknown): Checked<Credentials> {
  const { email, password } = (body ?? {}) as Record<string, unknown>;
  if (typeof email !== 'string' || typeof password !== 'string') return { ok: false, error: 'email and password are required' };
  return { ok: true, value: { email: email.toLowerCase(), password } };
}

export function checkOrderLines(body: unknown): Checked<OrderLine[]> {
  const lines = ((body ?? {}) as { lines?: unknown }).lines;
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > 100) return { ok: false, error: 'lines must be a list of 1 to 100 order lines' };
  const checked: OrderLine[] = [];
  for (const [index, line] of lines.entries()) {
    const { sku, quantity, unitPriceCents } = (line ?? {}) as Record<string, unknown>;
    if (typeof sku !== 'string' || sku.trim() === '') return { ok: false, error: `lines[${index}].sku must be a non-empty string` };
    if (!Number.isInteger(quantity) || (quantity as number) < 1) return { ok: false, error: `lines[${index}].quantity must be a whole number of 1 or more` };
    if (!Number.isInteger(unitPriceCents) || (unitPriceCents as number) < 0) return { ok: false, error: `lines[${index}].unitPriceCents must be a whole number of 0 or more` };
    checked.push({ sku, quantity: quantity as number, unitPriceCents: unitPriceCents as number });
  }
  return { ok: true, value: checked };
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
