import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabelRequest } from './requests.ts';

/** A postcode the carrier never serves: every request for it fails, however often it is retried. */
export const UNSERVED_POSTCODE = '00000';

/** The carrier refused the request for good (retrying cannot help; only a person can). */
export class LabelRefused extends Error {
  override name = 'LabelRefused';
}

/** The carrier's API is down or overloaded (a 503): a later attempt may well succeed. */
export class CarrierUnavailable extends Error {
  override name = 'CarrierUnavailable';
}

export interface CarrierOptions {
  /** How long a call takes. */
  latencyMs?: number;
  /** The share of calls (0 to 1) that fail with a 503, at random. */
  flakiness?: number;
}

/**
 * Stands in for the carrier's label API: returns a tracking number after `latencyMs`, fails
 * `flakiness` of the calls as unavailable, and always refuses UNSERVED_POSTCODE.
 */
export async function buyLabel(request: LabelRequest, options: CarrierOptions = {}): Promise<string> {
  await sleep(options.latencyMs ?? 20);
  if (request.postcode === UNSERVED_POSTCODE) {
    throw new LabelRefused(`the carrier does not deliver to postcode ${request.postcode}`);
  }
  if (Math.random() < (options.flakiness ?? 0)) throw new CarrierUnavailable('carrier API answered 503 Service Unavailable');
  return `TRACK-${randomUUID().slice(0, 8).toUpperCase()}`;
}
