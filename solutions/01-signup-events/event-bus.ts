import { EventEmitter } from 'node:events';

export type Handler<Payload> = (payload: Payload) => void | Promise<void>;

/** Called with every error a handler throws or rejects with; the bus itself never throws them. */
export type ErrorReporter = (error: unknown, context: { event: string }) => void;

export type Unsubscribe = () => void;

type Settled = Promise<void>;

/**
 * A typed publish/subscribe bus on top of node:events.
 *
 * Publishers call `emit` and move on; each handler runs isolated from the others, so one failing
 * subscriber (by throwing, or by rejecting later) cannot break the publisher or its neighbours.
 */
export class EventBus<Events extends object> {
  private readonly emitter = new EventEmitter();
  private readonly reportError: ErrorReporter;

  constructor(options: { onError?: ErrorReporter } = {}) {
    this.reportError = options.onError ?? ((error, { event }) => console.error(`[event-bus] handler for "${event}" failed:`, error));
    // A bus has many subscribers per event by design; lift Node's leak warning threshold.
    this.emitter.setMaxListeners(0);
  }

  on<Name extends keyof Events & string>(event: Name, handler: Handler<Events[Name]>): Unsubscribe {
    const listener = this.isolate(event, handler);
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- isolate() never rejects: it reports errors itself
    this.emitter.on(event, listener);
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the same listener, to remove it
    return () => this.emitter.off(event, listener);
  }

  once<Name extends keyof Events & string>(event: Name, handler: Handler<Events[Name]>): Unsubscribe {
    const listener = this.isolate(event, handler);
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- isolate() never rejects: it reports errors itself
    this.emitter.once(event, listener);
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the same listener, to remove it
    return () => this.emitter.off(event, listener);
  }

  /** Publishes and returns at once; handlers finish in their own time. */
  emit<Name extends keyof Events & string>(event: Name, payload: Events[Name]): void {
    this.emitter.emit(event, payload);
  }

  /** Publishes and resolves once every handler has finished (successfully or not). */
  async emitAndWait<Name extends keyof Events & string>(event: Name, payload: Events[Name]): Promise<void> {
    // rawListeners keeps the `once` wrappers, so calling them also removes one-time handlers.
    const listeners = this.emitter.rawListeners(event) as Array<(payload: Events[Name]) => Settled>;
    await Promise.all(listeners.map((listener) => listener(payload)));
  }

  listenerCount(event: keyof Events & string): number {
    return this.emitter.listenerCount(event);
  }

  /** Wraps a handler so that neither a synchronous throw nor a rejection escapes it. */
  private isolate<Payload>(event: string, handler: Handler<Payload>): (payload: Payload) => Settled {
    return async (payload) => {
      try {
        await handler(payload);
      } catch (error) {
        this.reportError(error, { event });
      }
    };
  }
}
