// Evaluator: semantics, runtime errors with positions, freezing, and the sandbox.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Builtin, StarDict, StarlarkError, StarList, StarStruct, StarTuple, compile, load, runProgram, type Value,
} from "../src/starlark/index.ts";

function out(src: string): string[] {
  return runProgram(src).output;
}

function errorOf(src: string, opts: Parameters<typeof runProgram>[1] = {}): StarlarkError {
  try {
    runProgram(src, opts);
  } catch (err) {
    assert.ok(err instanceof StarlarkError, `expected a StarlarkError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the program to fail");
}

test("if/elif/else, for with break and continue, nested defs and closures", () => {
  assert.deepEqual(out(`
def classify(n):
    if n < 0:
        return "neg"
    elif n == 0:
        return "zero"
    else:
        return "pos"
def first_even_over(xs, limit):
    for x in xs:
        if x % 2:
            continue
        if x > limit:
            return x
    return None
def loop():
    seen = []
    for i in range(10):
        if i == 4:
            break
        seen.append(i)
    return seen
print(classify(-2), classify(0), classify(3), first_even_over([1, 2, 5, 8, 10], 3), loop())
`), ['"neg" "zero" "pos" 8 [0, 1, 2, 3]'.replace(/"/g, "")]);
});

test("for over dicts iterates keys; over tuples and ranges; tuple unpacking in for", () => {
  assert.deepEqual(out(`
d = {"b": 1, "a": 2}
print([k for k in d], [x for x in (3, 4)], [i for i in range(3, 0, -1)])
print([k + "=" + str(v) for k, v in d.items()], [a * b for (a, b) in [(1, 2), (3, 4)]])
`), ['["b", "a"] [3, 4] [3, 2, 1]', '["b=1", "a=2"] [2, 12]']);
});

test("and/or return an operand; not, in, not in; conditional expressions", () => {
  assert.deepEqual(out(`print(0 or "x", 1 and [], None or None, not [], 2 in [1, 2], "k" not in {"k": 1}, "yes" if [] else "no")`), [
    'x [] None True True False no',
  ]);
});

test("augmented assignment on names, list elements and dict entries; list += extends in place", () => {
  assert.deepEqual(out(`
def f():
    n = 1
    n += 2
    n *= 5
    n //= 2
    n -= 1
    xs = [1, 2]
    alias = xs
    xs += [3]
    xs[0] += 10
    d = {"a": 1}
    d["a"] |= 6
    s = "a"
    s += "b"
    return n, alias, d, s
print(f())
`), ['(6, [11, 2, 3], {"a": 7}, "ab")']);
});

test("comprehensions have their own scope and may nest", () => {
  assert.deepEqual(out(`
x = "outer"
ys = [x for x in range(3)]
pairs = {a + str(b): b for a in ["p", "q"] for b in range(2) if b or a == "q"}
print(x, ys, pairs, [[j for j in range(i)] for i in range(3)])
`), ['outer [0, 1, 2] {"p1": 1, "q0": 0, "q1": 1} [[], [0], [0, 1]]']);
});

test("runtime errors name the line and column and carry no JavaScript stack", () => {
  const e = errorOf(`
def pick(members):
    return members[5]

pick([1, 2])
`);
  assert.equal(e.message, "scriptlet:3:19: index 5 out of range: list has length 2");
  assert.equal(e.kind, "runtime");
  assert.ok(!String(e.stack).includes(".ts:"), "the stack must not show interpreter internals");
});

test("common runtime errors have clear messages", () => {
  const cases: [string, RegExp][] = [
    [`{"a": 1}["b"]`, /key "b" not in dict/],
    [`[1] + (2,)`, /unsupported binary operation: list \+ tuple/],
    [`1 < "a"`, /unsupported comparison: int < string/],
    [`len(3)`, /len: value of type int has no len/],
    [`None.x`, /NoneType has no \.x field or method/],
    [`[1, 2].nope()`, /list has no \.nope field or method/],
    [`a, b = [1, 2, 3]`, /too many values to unpack \(got 3, want 2\)/],
    [`{[1]: 2}`, /unhashable type: list/],
    [`{"a": 1, "a": 2}`, /duplicate key "a" in dict literal/],
    [`fail("no member has", 3, "GiB free")`, /fail: no member has 3 GiB free/],
    [`(lambda x: x)(1, 2)`, /function lambda accepts at most 1 positional argument \(2 given\)/],
    [`(lambda x: x)(y=1)`, /function lambda got an unexpected keyword argument y/],
    [`int("12x")`, /int: invalid literal with base 10: "12x"/],
    [`"a" + 1`, /unsupported binary operation: string \+ int/],
    [`x = 1\nx.y = 2`, /cannot assign to field \.y/],
    [`(1, 2)[0] = 3`, /tuple value does not support item assignment/],
  ];
  for (const [src, re] of cases) assert.match(errorOf(src).message, re, src);
});

test("frozen values: globals after load, host data always; copies are mutable", () => {
  const { module } = runProgram(`
names = ["n1"]
table = {"n1": 1}
def add(x):
    names.append(x)
def put(x):
    table[x] = 2
def copy_and_add(x):
    c = list(names)
    c.append(x)
    return c
`);
  const call = (name: string, ...args: Value[]) => module.interpreter.callFunction(module.global(name)!, args);
  assert.throws(() => call("add", "n2"), /scriptlet:5:17: cannot append to frozen list/);
  assert.throws(() => call("put", "n2"), /scriptlet:7:5: cannot insert into frozen dict/);
  assert.equal((call("copy_and_add", "n2") as StarList).elems.length, 2);
  assert.equal((module.global("names") as StarList).elems.length, 1);
});

test("every list and dict mutator refuses a frozen value", () => {
  const { module } = runProgram(`
xs = [1, 2]
d = {"a": 1}
def m1():
    xs.extend([3])
def m2():
    xs.insert(0, 1)
def m3():
    xs.pop()
def m4():
    xs.remove(1)
def m5():
    xs.clear()
def m6():
    xs[0] = 9
def m7():
    d.pop("a")
def m8():
    d.update(b=2)
def m9():
    d.setdefault("z", 1)
def m10():
    d.clear()
def m11():
    d.popitem()
`);
  for (let i = 1; i <= 11; i++) {
    assert.throws(() => module.interpreter.callFunction(module.global(`m${i}`)!, []), /frozen (list|dict)/, `m${i}`);
  }
  assert.equal(module.interpreter.callFunction(new Builtin("noop", () => null), []), null);
});

test("recursion is refused, also through another function", () => {
  assert.match(errorOf(`
def a(n):
    return b(n)
def b(n):
    return a(n) if n else 0
a(3)
`).message, /scriptlet:5:13: function a called recursively/);
});

test("mutating a dict while iterating it is refused; after the loop it is fine", () => {
  assert.match(errorOf(`
def f():
    d = {"a": 1}
    for k in d:
        d["b"] = 2
f()
`).message, /scriptlet:5:9: cannot insert into dict during iteration/);
  assert.deepEqual(out(`
def f():
    d = {"a": 1}
    for k in list(d):
        d[k + "2"] = 2
    return d
print(f())
`), ['{"a": 1, "a2": 2}']);
});

test("string iteration is refused everywhere an iterable is expected", () => {
  for (const src of [`[c for c in "ab"]`, `list("ab")`, `sorted("ba")`, `a, b = "ab"`, `max("ab")`]) {
    assert.match(errorOf(src).message, /string is not iterable/, src);
  }
});

test("step budget: a runaway loop stops with the line it was on", () => {
  const e = errorOf(`
def spin():
    total = 0
    for i in range(100000000):
        total += i
    return total
spin()
`, { limits: { maxSteps: 50_000 } });
  assert.equal(e.kind, "limit");
  assert.match(e.message, /^scriptlet:\d+:\d+: step budget exhausted \(more than 50000 steps\)$/);
  assert.ok(e.line! >= 4 && e.line! <= 5);
});

test("a small step budget is exact: the step after the last allowed one fails", () => {
  const src = "def f():\n    for i in range(1000):\n        pass\nf()\n";
  assert.match(errorOf(src, { limits: { maxSteps: 100 } }).detail, /^step budget exhausted \(more than 100 steps\)$/);
  assert.deepEqual(runProgram("x = 1", { limits: { maxSteps: 100 } }).output, []);
});

test("call depth is bounded even without recursion", () => {
  const defs = Array.from({ length: 80 }, (_, i) => `def f${i}():\n    return ${i === 79 ? "0" : `f${i + 1}()`}\n`).join("");
  const e = errorOf(defs + "f0()\n");
  assert.equal(e.kind, "limit");
  assert.match(e.detail, /^call depth exceeds 64$/);
  assert.deepEqual(runProgram(defs + "print(f0())\n", { limits: { maxCallDepth: 100 } }).output, ["0"]);
});

test("formatting errors are clear", () => {
  assert.match(errorOf(`"%s %s" % ("a",)`).detail, /not enough arguments for format string/);
  assert.match(errorOf(`"%s" % ("a", "b")`).detail, /too many arguments for format string/);
  assert.match(errorOf(`"%d" % "x"`).detail, /%d format requires a number, not string/);
  assert.match(errorOf(`"%z" % 1`).detail, /unsupported format character 'z'/);
  assert.match(errorOf(`"{} {}".format(1)`).detail, /no argument for field 1/);
  assert.match(errorOf(`"{0} {}".format(1, 2)`).detail, /cannot switch from manual field specification/);
  assert.match(errorOf(`"{a.b}".format(a=1)`).detail, /attribute and index access are not allowed/);
});

test("wall-clock limit, with an injected clock so the test does not depend on time", () => {
  let now = 0;
  const clock = () => (now += 50);
  const e = errorOf(`
def spin():
    for i in range(100000000):
        pass
spin()
`, { limits: { maxMillis: 1_000, maxSteps: 1e9 }, clock });
  assert.equal(e.kind, "limit");
  assert.match(e.detail, /time limit exceeded \(1000 ms\)/);
});

test("memory bound: huge strings and lists are refused before they are built", () => {
  assert.match(errorOf(`x = "a" * 1000000000`).detail, /memory limit exceeded/);
  assert.match(errorOf(`x = [0] * 1000000000`).detail, /memory limit exceeded/);
  assert.match(errorOf(`x = list(range(1000000000))`).detail, /memory limit exceeded/);
  const grow = errorOf(`
def grow():
    s = "x"
    for i in range(64):
        s = s + s
grow()
`, { limits: { maxAllocBytes: 1 << 20 } });
  assert.equal(grow.kind, "limit");
  assert.equal(grow.line, 5);
});

test("deeply nested values built at run time print, compare and freeze without a stack overflow", () => {
  const e = errorOf(`
def nest():
    x = []
    for i in range(5000):
        x = [x]
    return x
v = nest()
print(str(v))
`);
  assert.match(e.detail, /nested too deeply to print/);
  assert.deepEqual(out(`
def cyc():
    x = [1]
    x.append(x)
    return x
print(cyc())
`), ["[1, [...]]"]);
});

test("nothing outside the passed functions is reachable: no prototype access", () => {
  assert.deepEqual(out(`
print(hasattr({}, "constructor"), hasattr("", "__proto__"), hasattr([], "toString"), dir([])[:3])
d = {"__proto__": 1, "constructor": 2, "hasOwnProperty": 3}
print(d["__proto__"], d.get("constructor"), len(d), getattr({}, "constructor", "none"))
`), ['False False False ["append", "clear", "extend"]', "1 2 3 none"]);
  assert.match(errorOf(`getattr("x", "constructor")`).detail, /string has no \.constructor field or method/);
  const s = new StarStruct(new Map<string, Value>([["name", "n1"]]));
  const { module } = runProgram(`
def f(s):
    return hasattr(s, "constructor"), hasattr(s, "name"), getattr(s, "toString", None)
`);
  const r = module.interpreter.callFunction(module.global("f")!, [s]);
  assert.ok(r instanceof StarTuple);
  assert.deepEqual(r.elems, [false, true, null]);
});

test("print goes to the host's sink; a fresh load runs the top level again", () => {
  const lines: string[] = [];
  const program = compile(`print("loaded", 1, sep="|")`);
  load(program, new Map(), { print: (m) => lines.push(m) });
  load(program, new Map(), { print: (m) => lines.push(m) });
  assert.deepEqual(lines, ["loaded|1", "loaded|1"]);
});

test("host functions are predeclared builtins; dicts from the host can be read", () => {
  const host = new Map<string, Value>([["double", new Builtin("double", (_th, args) => (args[0] as number) * 2)]]);
  const d = new StarDict();
  d.set("k", 21);
  host.set("data", d);
  assert.deepEqual(runProgram(`print(double(data["k"]))`, { host }).output, ["42"]);
});
