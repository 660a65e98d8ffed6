// Errors raised by the Starlark lexer, parser, resolver and evaluator.
// The message is meant for an operator reading `lxc` output: "scriptlet:12:5: msg",
// never a JavaScript stack or an internal name.

export interface Position {
  line: number;
  column: number;
}

export type StarlarkErrorKind = "syntax" | "resolve" | "runtime" | "limit";

export class StarlarkError extends Error {
  readonly kind: StarlarkErrorKind;
  /** The bare message, without the "file:line:col: " prefix. */
  readonly detail: string;
  line: number | undefined;
  column: number | undefined;
  file: string;

  constructor(kind: StarlarkErrorKind, detail: string, pos?: Position, file = "scriptlet") {
    super(detail);
    this.name = "StarlarkError";
    this.kind = kind;
    this.detail = detail;
    this.file = file;
    this.line = pos?.line;
    this.column = pos?.column;
    this.message = this.render();
    // A stack would only show interpreter internals; the position is what matters.
    this.stack = `${this.name}: ${this.message}`;
  }

  /** Attach the innermost position if none is known yet (the first catcher wins). */
  at(pos: Position): this {
    if (this.line === undefined) {
      this.line = pos.line;
      this.column = pos.column;
      this.message = this.render();
      this.stack = `${this.name}: ${this.message}`;
    }
    return this;
  }

  private render(): string {
    if (this.line === undefined) return `${this.file}: ${this.detail}`;
    return `${this.file}:${this.line}:${this.column}: ${this.detail}`;
  }
}

export function syntaxError(detail: string, pos: Position): StarlarkError {
  return new StarlarkError("syntax", detail, pos);
}

/** A runtime error without a position; the evaluator adds the node's position. */
export function runtimeError(detail: string): StarlarkError {
  return new StarlarkError("runtime", detail);
}

export function limitError(detail: string, pos?: Position): StarlarkError {
  return new StarlarkError("limit", detail, pos);
}

/** Anything thrown while evaluating becomes a StarlarkError with a position. */
export function toStarlarkError(err: unknown, pos: Position | undefined): StarlarkError {
  if (err instanceof StarlarkError) return pos ? err.at(pos) : err;
  if (err instanceof RangeError && /call stack/i.test(err.message)) {
    const e = limitError("nesting too deep (interpreter stack exhausted)");
    return pos ? e.at(pos) : e;
  }
  const e = runtimeError(`internal error: ${err instanceof Error ? err.message : String(err)}`);
  return pos ? e.at(pos) : e;
}
