import { integerSetting, loadConfig } from './config.ts';
import { MAX_AMOUNT_CENTS } from './events.ts';
import { PaymentProvider } from './payment-provider.ts';
import { PAYMENT_REACTS_TO, paymentReactions } from './payments.ts';
import { runService, startSagaService } from './service-runtime.ts';

// The payment service: charges an order once its stock is reserved, refunds it if the saga fails.
//   npx tsx lessons/17-saga-choreography/payment-service.ts
// PAYMENT_LIMIT_CENTS (default 100000): larger charges are declined.
// PAYMENT_LATENCY_MS (default 0): how long the card network takes to answer.

const SERVICE = 'payment-service';

runService(SERVICE, async () => {
  const config = loadConfig(SERVICE);
  const provider = new PaymentProvider({
    limitCents: integerSetting(process.env, 'PAYMENT_LIMIT_CENTS', 100_000, 0, MAX_AMOUNT_CENTS),
    latencyMs: integerSetting(process.env, 'PAYMENT_LATENCY_MS', 0, 0, 600_000),
  });
  await startSagaService({ name: SERVICE, reactsTo: PAYMENT_REACTS_TO, react: paymentReactions(provider) }, config);
});
