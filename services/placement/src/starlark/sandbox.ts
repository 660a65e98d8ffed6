// The limits one run of a script lives within. A scriptlet runs inside a request
// handler of the gateway, so a runaway script must end quickly, with an error that
// says which limit it hit and where.
import { limitError } from "./errors.ts";

export interface Limits {
  /** Evaluation steps (expression nodes, statements, loop iterations, builtin work). */
  maxSteps?: number;
  /** Wall-clock milliseconds for the whole run, checked every `clockCheckEvery` steps. */
  maxMillis?: number;
  /** Estimated bytes of values built during the run (strings, list/dict elements). */
  maxAllocBytes?: number;
  /** Deepest call nesting of Starlark functions (recursion itself is refused). */
  maxCallDepth?: number;
}

export const DEFAULT_LIMITS: Required<Limits> = {
  maxSteps: 1_000_000,
  maxMillis: 1_000,
  maxAllocBytes: 64 * 1024 * 1024,
  maxCallDepth: 64,
};

/** How often the clock is read: reading it on every step would dominate the cost. */
const CLOCK_CHECK_EVERY = 1024;

export type Clock = () => number;

export class Budget {
  steps = 0;
  allocated = 0;
  private readonly maxSteps: number;
  private readonly maxAlloc: number;
  private readonly deadline: number;
  private nextClockCheck = CLOCK_CHECK_EVERY;
  private readonly millis: number;
  readonly maxCallDepth: number;

  constructor(limits: Limits = {}, private readonly clock: Clock = () => performance.now()) {
    this.maxSteps = limits.maxSteps ?? DEFAULT_LIMITS.maxSteps;
    this.maxAlloc = limits.maxAllocBytes ?? DEFAULT_LIMITS.maxAllocBytes;
    this.maxCallDepth = limits.maxCallDepth ?? DEFAULT_LIMITS.maxCallDepth;
    this.millis = limits.maxMillis ?? DEFAULT_LIMITS.maxMillis;
    this.deadline = clock() + this.millis;
    this.nextClockCheck = Math.min(CLOCK_CHECK_EVERY, this.maxSteps + 1);
  }

  step(n = 1): void {
    this.steps += n;
    if (this.steps >= this.nextClockCheck) this.slowPath();
  }

  private slowPath(): void {
    if (this.steps > this.maxSteps) {
      throw limitError(`step budget exhausted (more than ${this.maxSteps} steps)`);
    }
    this.nextClockCheck = Math.min(this.steps + CLOCK_CHECK_EVERY, this.maxSteps + 1);
    if (this.clock() > this.deadline) {
      throw limitError(`time limit exceeded (${this.millis} ms)`);
    }
  }

  alloc(bytes: number): void {
    this.allocated += bytes;
    if (this.allocated > this.maxAlloc) {
      throw limitError(`memory limit exceeded (values built exceed ${this.maxAlloc} bytes)`);
    }
  }
}
