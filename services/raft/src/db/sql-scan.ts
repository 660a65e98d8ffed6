// A small SQL tokenizer and the checks built on it. It is not a parser: it only
// has to see through comments, string literals and quoted identifiers so that
// the checks below are not fooled by, or tripped over, text inside them.

export type TokenKind = "word" | "ident" | "string" | "blob" | "number" | "param" | "punct";

export interface Token {
  kind: TokenKind;
  /** word: as written; ident/string: unquoted content; others: source text. */
  value: string;
}

const WORD = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER = /0[xX][0-9a-fA-F]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?/y;
const PARAM = /\?\d*|[:@$][A-Za-z0-9_$]+(?:::[A-Za-z0-9_$]+)*(?:\([^)]*\))?/y;

function quoted(sql: string, start: number, close: string): [string, number] {
  let out = "";
  let i = start + 1;
  for (;;) {
    const end = sql.indexOf(close, i);
    if (end < 0) throw new Error("unterminated quoted text");
    out += sql.slice(i, end);
    // A doubled quote is an escaped quote (not for [brackets]).
    if (close !== "]" && sql[end + 1] === close) {
      out += close;
      i = end + 2;
    } else {
      return [out, end + 1];
    }
  }
}

export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const match = (re: RegExp) => {
    re.lastIndex = i;
    const m = re.exec(sql);
    return m ? m[0] : null;
  };
  while (i < sql.length) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === "-" && sql[i + 1] === "-") {
      const nl = sql.indexOf("\n", i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === "'") {
      const [value, next] = quoted(sql, i, "'");
      tokens.push({ kind: "string", value });
      i = next;
    } else if ((c === "x" || c === "X") && sql[i + 1] === "'") {
      const [value, next] = quoted(sql, i + 1, "'");
      tokens.push({ kind: "blob", value });
      i = next;
    } else if (c === '"' || c === "`" || c === "[") {
      const [value, next] = quoted(sql, i, c === "[" ? "]" : c);
      tokens.push({ kind: "ident", value });
      i = next;
    } else {
      let text: string | null;
      let kind: TokenKind;
      if ((text = match(WORD))) kind = "word";
      else if ((text = match(NUMBER))) kind = "number";
      else if ((text = match(PARAM))) kind = "param";
      else [text, kind] = [c, "punct"];
      tokens.push({ kind, value: text });
      i += text.length;
    }
  }
  return tokens;
}

const isWord = (t: Token | undefined, ...words: string[]) =>
  t !== undefined && t.kind === "word" && words.includes(t.value.toUpperCase());
const isName = (t: Token | undefined) => t !== undefined && (t.kind === "word" || t.kind === "ident");
const isPunct = (t: Token | undefined, p: string) => t !== undefined && t.kind === "punct" && t.value === p;

/** The statement's first keyword, upper-cased ("" if none). */
export function leadingKeyword(tokens: Token[]): string {
  const first = tokens[0];
  return first?.kind === "word" ? first.value.toUpperCase() : "";
}

/** True when something other than a trailing semicolon follows the first statement. */
export function hasSecondStatement(tokens: Token[]): boolean {
  // A trigger's body holds semicolons between BEGIN and END (CASE also ends in END).
  const trigger = leadingKeyword(tokens) === "CREATE" && tokens.some((t) => isWord(t, "TRIGGER"));
  let depth = 0;
  let semi = -1;
  for (let i = 0; i < tokens.length && semi < 0; i++) {
    if (trigger && isWord(tokens[i], "BEGIN", "CASE")) depth++;
    else if (trigger && isWord(tokens[i], "END")) depth--;
    else if (depth === 0 && isPunct(tokens[i], ";")) semi = i;
  }
  return semi >= 0 && tokens.slice(semi + 1).some((t) => !isPunct(t, ";"));
}

export const INTERNAL_PREFIX = "_shoal_";

/** Names (tables, columns, anything) in the statement that belong to the state machine. */
export function internalNames(tokens: Token[]): string[] {
  return tokens
    .filter((t) => isName(t) && t.value.toLowerCase().startsWith(INTERNAL_PREFIX))
    .map((t) => t.value);
}

// Functions whose result depends on more than their arguments. changes() and
// last_insert_rowid() are allowed: the state machine resets the connection's
// counters at the start of every command, so they only see the command itself.
const NONDETERMINISTIC_FUNCTIONS = new Set(["random", "randomblob", "total_changes"]);
const TIME_KEYWORDS = new Set(["CURRENT_TIMESTAMP", "CURRENT_DATE", "CURRENT_TIME"]);
export const DATE_FUNCTIONS = new Set(["date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff"]);
/** Date/time arguments that read the clock or the host's time zone. */
export const CLOCK_ARGUMENTS = new Set(["now", "localtime", "utc"]);

/** Why the statement would not give the same result on every replica, or null. */
export function nondeterminism(tokens: Token[]): string | null {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === "word" && TIME_KEYWORDS.has(t.value.toUpperCase())) {
      return `${t.value.toUpperCase()} reads the clock; pass the time as a parameter`;
    }
    if (isWord(t, "CREATE") && isWord(tokens[i + 1], "TEMP", "TEMPORARY")) {
      return "temporary objects live only in one connection and are lost on restart";
    }
    if (isWord(t, "TEMP") && isPunct(tokens[i + 1], ".")) {
      return "the temp schema lives only in one connection and is lost on restart";
    }
    if (!isName(t) || !isPunct(tokens[i + 1], "(")) continue;
    const name = t.value.toLowerCase();
    if (NONDETERMINISTIC_FUNCTIONS.has(name)) {
      return `${name}() is non-deterministic; compute the value before proposing and pass it as a parameter`;
    }
    if (DATE_FUNCTIONS.has(name)) {
      if (isPunct(tokens[i + 2], ")")) return `${name}() without arguments reads the clock; pass the time as a parameter`;
      for (let j = i + 2, depth = 1; j < tokens.length && depth > 0; j++) {
        if (isPunct(tokens[j], "(")) depth++;
        else if (isPunct(tokens[j], ")")) depth--;
        else if (tokens[j].kind === "string" && CLOCK_ARGUMENTS.has(tokens[j].value.trim().toLowerCase())) {
          return `${name}() with '${tokens[j].value}' depends on the host's clock or time zone`;
        }
      }
    }
  }
  return null;
}

/**
 * Tables a statement writes, lower-cased, derived from its text: INSERT/REPLACE
 * INTO, UPDATE, DELETE FROM, and CREATE/DROP/ALTER TABLE. Writes made by
 * triggers or foreign-key actions are not visible here.
 */
export function writtenTables(tokens: Token[]): string[] {
  const tables = new Set<string>();
  // Reads a possibly schema-qualified name starting at i.
  const nameAt = (i: number): string | null => {
    if (!isName(tokens[i])) return null;
    const qualified = isPunct(tokens[i + 1], ".") && isName(tokens[i + 2]);
    return (qualified ? tokens[i + 2] : tokens[i]).value.toLowerCase();
  };
  const add = (name: string | null) => name && tables.add(name);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (isWord(t, "INSERT", "REPLACE")) {
      let j = i + 1;
      if (isWord(tokens[j], "OR")) j += 2;
      if (isWord(tokens[j], "INTO")) add(nameAt(j + 1));
    } else if (isWord(t, "UPDATE")) {
      // Skip "ON UPDATE CASCADE", "AFTER UPDATE OF", "DO UPDATE SET" and the like.
      if (isWord(tokens[i - 1], "ON", "BEFORE", "AFTER", "OF", "DO")) continue;
      let j = i + 1;
      if (isWord(tokens[j], "OR")) j += 2;
      if (isWord(tokens[j], "SET", "OF", "ON")) continue;
      add(nameAt(j));
    } else if (isWord(t, "DELETE") && isWord(tokens[i + 1], "FROM")) {
      add(nameAt(i + 2));
    } else if (isWord(t, "CREATE", "DROP", "ALTER") && isWord(tokens[i + 1], "TABLE")) {
      let j = i + 2;
      if (isWord(tokens[j], "IF")) j += isWord(tokens[j + 1], "NOT") ? 3 : 2;
      add(nameAt(j));
    }
  }
  return [...tables];
}

// Which tables a SQL text writes never changes, and callers repeat the same texts.
const writtenBy = new Map<string, string[]>();

/** writtenTables of a SQL text, remembered per text (the state machine and the gateway's cache ask for the same ones). */
export function tablesWrittenBy(sql: string): string[] {
  let tables = writtenBy.get(sql);
  if (!tables) {
    tables = writtenTables(tokenize(sql));
    if (writtenBy.size >= 2048) writtenBy.delete(writtenBy.keys().next().value!);
    writtenBy.set(sql, tables);
  }
  return tables;
}
