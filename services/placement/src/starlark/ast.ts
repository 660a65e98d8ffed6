// The Starlark syntax tree. Every node carries the line and column of its first
// token (for binary operators: of the operator) so runtime errors can point at it.
import type { Position } from "./errors.ts";

export interface Node extends Position {}

// ---- expressions ----------------------------------------------------------

/** How the resolver bound a name; filled in after parsing. */
export type Binding =
  | { scope: "local"; index: number }
  | { scope: "free"; depth: number; index: number }
  | { scope: "global"; index: number }
  | { scope: "predeclared" };

export interface NameExpr extends Node {
  kind: "name";
  name: string;
  binding?: Binding;
}
export interface LiteralExpr extends Node {
  kind: "literal";
  /** number|bigint for ints, string for strings; floats are wrapped by the parser. */
  value: unknown;
}
export interface ListExpr extends Node {
  kind: "list";
  elems: Expr[];
}
export interface TupleExpr extends Node {
  kind: "tuple";
  elems: Expr[];
  parenthesized: boolean;
}
export interface DictExpr extends Node {
  kind: "dict";
  entries: { key: Expr; value: Expr }[];
}
export type CompClause =
  | { kind: "for"; vars: Expr; iter: Expr; line: number; column: number }
  | { kind: "if"; cond: Expr; line: number; column: number };
export interface CompExpr extends Node {
  kind: "comp";
  dict: boolean;
  /** For a list comprehension: the element; for a dict one: the key. */
  body: Expr;
  value?: Expr;
  clauses: CompClause[];
}
export interface UnaryExpr extends Node {
  kind: "unary";
  op: "-" | "+" | "~" | "not";
  operand: Expr;
}
export type BinaryOp =
  | "+" | "-" | "*" | "/" | "//" | "%" | "&" | "|" | "^" | "<<" | ">>"
  | "==" | "!=" | "<" | ">" | "<=" | ">=" | "in" | "not in";
export interface BinaryExpr extends Node {
  kind: "binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
}
export interface LogicalExpr extends Node {
  kind: "logical";
  op: "and" | "or";
  left: Expr;
  right: Expr;
}
export interface CondExpr extends Node {
  kind: "cond";
  cond: Expr;
  then: Expr;
  else: Expr;
}
export interface IndexExpr extends Node {
  kind: "index";
  object: Expr;
  index: Expr;
}
export interface SliceExpr extends Node {
  kind: "slice";
  object: Expr;
  start?: Expr;
  stop?: Expr;
  step?: Expr;
}
export interface DotExpr extends Node {
  kind: "dot";
  object: Expr;
  name: string;
}
export interface Argument {
  kind: "pos" | "named" | "star" | "starstar";
  name?: string;
  value: Expr;
}
export interface CallExpr extends Node {
  kind: "call";
  fn: Expr;
  args: Argument[];
}
export interface LambdaExpr extends Node {
  kind: "lambda";
  fn: FunctionInfo;
}

export type Expr =
  | NameExpr | LiteralExpr | ListExpr | TupleExpr | DictExpr | CompExpr | UnaryExpr
  | BinaryExpr | LogicalExpr | CondExpr | IndexExpr | SliceExpr | DotExpr | CallExpr | LambdaExpr;

// ---- functions ------------------------------------------------------------

export interface Param extends Node {
  kind: "plain" | "star" | "starstar";
  /** Absent for a bare "*" that only separates keyword-only parameters. */
  name?: string;
  default?: Expr;
}

/** What def and lambda share; the resolver fills in the frame layout. */
export interface FunctionInfo extends Node {
  name: string;
  params: Param[];
  body: Stmt[];
  /** Number of positional-or-keyword parameters (before any * or *args). */
  numPositional: number;
  /** Number of keyword-only parameters (after * or *args). */
  numKwonly: number;
  hasVarargs: boolean;
  hasKwargs: boolean;
  /** Filled by the resolver: slots in the frame (params first, in order). */
  numLocals: number;
  localNames: string[];
}

// ---- statements -----------------------------------------------------------

export interface ExprStmt extends Node {
  kind: "expr";
  expr: Expr;
}
export interface AssignStmt extends Node {
  kind: "assign";
  target: Expr;
  value: Expr;
}
export interface AugAssignStmt extends Node {
  kind: "augassign";
  op: BinaryOp;
  target: Expr;
  value: Expr;
}
export interface IfStmt extends Node {
  kind: "if";
  cond: Expr;
  then: Stmt[];
  else: Stmt[];
}
export interface ForStmt extends Node {
  kind: "for";
  vars: Expr;
  iter: Expr;
  body: Stmt[];
}
export interface WhileStmt extends Node {
  kind: "while";
  cond: Expr;
  body: Stmt[];
}
export interface DefStmt extends Node {
  kind: "def";
  fn: FunctionInfo;
  target: NameExpr;
}
export interface ReturnStmt extends Node {
  kind: "return";
  value?: Expr;
}
export interface SimpleStmt extends Node {
  kind: "pass" | "break" | "continue";
}

export type Stmt =
  | ExprStmt | AssignStmt | AugAssignStmt | IfStmt | ForStmt | WhileStmt | DefStmt
  | ReturnStmt | SimpleStmt;

export interface Module {
  body: Stmt[];
  /** Filled by the resolver. */
  globalNames: string[];
  /** Locals of top-level comprehensions live in a module frame of this size. */
  numModuleLocals: number;
}
