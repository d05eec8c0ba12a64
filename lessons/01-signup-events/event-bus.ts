import { EventEmitter } from 'node:events';

export type Handler<Payload> = (payload: Payload) => void | Promise<void>;

/** Called with every error a handler throws or rejects with; the bus itself never throws them. */
export type ErrorReporter = (error: unknown, context: { event: string }) => void;

export type Unsubscribe = () => void;

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
    // TODO: register the handler on this.emitter so that a synchronous throw AND a rejected promise
    // are both passed to this.reportError instead of escaping. Return a function that removes it.
    throw new Error('TODO: EventBus.on');
  }

  once<Name extends keyof Events & string>(event: Name, handler: Handler<Events[Name]>): Unsubscribe {
    // TODO: like on(), but the handler runs for the first event only.
    throw new Error('TODO: EventBus.once');
  }

  /** Publishes and returns at once; handlers finish in their own time. */
  emit<Name extends keyof Events & string>(event: Name, payload: Events[Name]): void {
    // TODO: publish the payload to every handler of this event, without waiting for them.
    throw new Error('TODO: EventBus.emit');
  }

  /** Publishes and resolves once every handler has finished (successfully or not). */
  async emitAndWait<Name extends keyof Events & string>(event: Name, payload: Events[Name]): Promise<void> {
    // TODO: call every handler of this event (EventEmitter#rawListeners keeps `once` wrappers)
    // and wait for all of them. Remember: EventEmitter#emit never awaits anything.
    throw new Error('TODO: EventBus.emitAndWait');
  }

  listenerCount(event: keyof Events & string): number {
    return this.emitter.listenerCount(event);
  }
}
