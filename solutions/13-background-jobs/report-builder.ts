import { setTimeout as delay } from 'node:timers/promises';
import type { ReportRequest } from './requests.ts';

export interface ReportResult {
  /** Where the finished report is stored. */
  url: string;
  rows: number;
}

/** Builds one report, calling `onProgress` with 0 to 100 as it goes. */
export type ReportBuilder = (request: ReportRequest, onProgress: (percent: number) => Promise<void>) => Promise<ReportResult>;

const STEPS = 4;

/**
 * Stands in for the real work (query a month of usage, render a PDF, upload it): it takes `workMs`
 * in all, in four steps, and reports its progress after each. It waits rather than computes, so the
 * worker's event loop stays free to renew the job's lock (see the chapter on stalled jobs).
 */
export function simulatedReportBuilder({ workMs }: { workMs: number }): ReportBuilder {
  return async (request, onProgress) => {
    for (let step = 1; step <= STEPS; step++) {
      await delay(workMs / STEPS);
      await onProgress(Math.round((step / STEPS) * 100));
    }
    return { url: `reports/${request.accountId}/${request.month}.pdf`, rows: 1_000 + request.month.length };
  };
}
