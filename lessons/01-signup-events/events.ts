/** The facts the signup flow announces. Names are past tense: something that already happened. */
export interface UserSignedUp {
  userId: string;
  email: string;
  name: string;
  /** ISO-8601 timestamp. */
  signedUpAt: string;
}

/** Event name to payload type: the bus uses this map to type every `on` and `emit`. */
export interface SignupEvents {
  'user.signed-up': UserSignedUp;
}
