#!/usr/bin/env python3
"""Rewrite the cited figures of the docs from the results files they cite.

    python3 scripts/bench_tables.py            # rewrite README.md, BENCHMARKS.md, results/recipe_selection.md
    python3 scripts/bench_tables.py --check    # only report figures that differ (exit 1 if any)
    python3 scripts/bench_tables.py FILE.md …  # other documents

A citation is an HTML comment right after a figure (see the top of BENCHMARKS.md):

    1.07 %<!-- results/mnist8_h400_b50_avg9999_s0.json /test_error -->
    136.4<!-- results/bench_kernels.json bench=sgemm_256x784x400 /value -->
    8,609<!-- results/train_vs_torch12.json bench=drsae_b10_unsup#2 /value -->
    0.094<!-- results/lista/lista.csv dataset=mnist&T=1 /lista -->
    1.40 %<!-- results/mnist_h200avg_l018.log "test error {}%" -->
    1.10 %<!-- mean(results/a.json /test_error, results/b.json /test_error) -->

Each figure is rewritten with the decimals it has (and its thousands commas); a text
citation without `{}` cannot be rewritten and is only checked. The same rules are checked
by `cargo test` (tests/benchmark_tables.rs). Python 3 standard library only.
"""

import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ["README.md", "BENCHMARKS.md", "results/recipe_selection.md"]
FUNCTIONS = ["mean", "sd", "min", "max", "ratio"]
MAX_GAP = 16
DIGITS = "0123456789"


class CiteError(Exception):
    pass


def is_citation(expr):
    if expr.startswith("results/"):
        return True
    return any(expr.startswith(f) and expr[len(f):].lstrip().startswith("(") for f in FUNCTIONS)


def figure_span(text, end):
    """(start, stop) of the number ending text[:end] (at most MAX_GAP unit characters
    between), or None."""
    i = end
    gap = 0
    while i > 0 and text[i - 1] not in DIGITS:
        if text[i - 1] in "|<>()\n" or gap == MAX_GAP:
            return None
        i -= 1
        gap += 1
    stop = i
    while i > 0 and (text[i - 1] in DIGITS or text[i - 1] in ".,"):
        i -= 1
    while i < stop and text[i] in ".,":
        i += 1
    if i > 0 and text[i - 1] in "-\u2212":
        i -= 1
    return (i, stop) if i < stop else None


def mask_code(text):
    """text with fenced code blocks and inline code spans blanked (same length): citations
    inside code are examples, not citations."""
    out = []
    fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fence = not fence
            out.append(" " * len(line))
            continue
        if fence:
            out.append(" " * len(line))
            continue
        chars, code = [], False
        for ch in line:
            if ch == "`":
                code = not code
                chars.append(" ")
            else:
                chars.append(" " if code else ch)
        out.append("".join(chars))
    return "\n".join(out)


def citations(text):
    """[(line, (start, stop) or None, expr)] for every citation comment outside code."""
    text = mask_code(text)
    out = []
    pos = 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            break
        end = text.find("-->", start)
        if end < 0:
            break
        expr = text[start + 4:end].strip()
        pos = end + 3
        if not is_citation(expr):
            continue
        line = text.count("\n", 0, start) + 1
        out.append((line, figure_span(text, start), expr))
    return out


def tokenize(s):
    tokens = []
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            tokens.append((c, None))
            i += 1
        elif c == '"':
            j = s.find('"', i + 1)
            if j < 0:
                raise CiteError("unterminated quote in %r" % s)
            tokens.append(("quoted", s[i + 1:j]))
            i = j + 1
        else:
            j = i
            while j < len(s) and not s[j].isspace() and s[j] not in '(),"':
                j += 1
            tokens.append(("word", s[i:j]))
            i = j
    return tokens


def parse_expr(s):
    tokens = tokenize(s)
    expr, pos = parse_at(tokens, 0)
    if pos != len(tokens):
        raise CiteError("unexpected %r in %r" % (tokens[pos], s))
    return expr


def parse_at(tokens, pos):
    if pos >= len(tokens) or tokens[pos][0] != "word":
        raise CiteError("expected a path or a function")
    first = tokens[pos][1]
    pos += 1
    if first in FUNCTIONS and pos < len(tokens) and tokens[pos][0] == "(":
        pos += 1
        args = []
        arg, pos = parse_at(tokens, pos)
        args.append(arg)
        while True:
            if pos < len(tokens) and tokens[pos][0] == ",":
                arg, pos = parse_at(tokens, pos + 1)
                args.append(arg)
            elif pos < len(tokens) and tokens[pos][0] == ")":
                pos += 1
                break
            else:
                raise CiteError("expected , or ) in %s(...)" % first)
        return ("call", first, args), pos
    if not first.startswith("results/") or ".." in first:
        raise CiteError("a cited file must be under results/: %r" % first)
    ref = {"path": first, "selector": None, "pointer": None, "pattern": None}
    while pos < len(tokens):
        kind, val = tokens[pos]
        if kind == "word" and val.startswith("/") and ref["pointer"] is None:
            ref["pointer"] = val
        elif kind == "word" and ref["selector"] is None and ref["pointer"] is None:
            ref["selector"] = val
        elif kind == "quoted" and ref["pattern"] is None:
            ref["pattern"] = val
        elif kind in (",", ")"):
            break
        else:
            raise CiteError("unexpected %r after %s" % (val, first))
        pos += 1
    if ref["pattern"] is not None and (ref["selector"] or ref["pointer"]):
        raise CiteError("%s: a text pattern takes no selector or pointer" % first)
    return ("ref", ref), pos


_cache = {}


def read(path):
    if path not in _cache:
        try:
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                _cache[path] = f.read()
        except OSError as e:
            raise CiteError("%s: cannot be read (%s)" % (path, e))
    return _cache[path]


def evaluate(expr):
    """A float, or ('text', pattern) for a text citation without {}."""
    if expr[0] == "ref":
        return eval_ref(expr[1])
    _, name, args = expr
    xs = []
    for a in args:
        v = evaluate(a)
        if isinstance(v, tuple):
            raise CiteError("%s() of a text match" % name)
        xs.append(v)
    mean = sum(xs) / len(xs)
    if name == "mean":
        return mean
    if name == "sd":
        if len(xs) < 2:
            raise CiteError("sd() needs at least two values")
        return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
    if name == "min":
        return min(xs)
    if name == "max":
        return max(xs)
    if len(xs) != 2:
        raise CiteError("ratio() takes two values")
    return xs[0] / xs[1]


def json_value_str(v):
    if isinstance(v, str):
        return v
    return json.dumps(v)


def select(path, text, selector):
    csv = path.endswith(".csv")
    if selector is None:
        if csv:
            raise CiteError("%s: a CSV citation needs a row selector" % path)
        try:
            return json.loads(text)
        except ValueError:
            raise CiteError("%s: not one JSON document; select a line (L<n>, last, key=value)" % path)
    records = []
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    if csv:
        if not lines:
            raise CiteError("%s: empty CSV" % path)
        header = [h.strip() for h in lines[0].split(",")]
        for i, l in enumerate(lines[1:], start=2):
            if l.strip():
                records.append((i, dict(zip(header, [c.strip() for c in l.split(",")]))))
    else:
        for i, l in enumerate(lines, start=1):
            try:
                v = json.loads(l.strip())
            except ValueError:
                continue
            if isinstance(v, (dict, list)):
                records.append((i, v))
    if selector == "last":
        if not records:
            raise CiteError("%s: no JSON line" % path)
        return records[-1][1]
    if selector.startswith("L") and selector[1:].isdigit():
        n = int(selector[1:])
        for i, v in records:
            if i == n:
                return v
        raise CiteError("%s: line %d is not a record" % (path, n))
    conditions, nth = selector, 1
    if "#" in selector:
        conditions, n = selector.rsplit("#", 1)
        if not n.isdigit():
            raise CiteError("%s: bad match number in %r" % (path, selector))
        nth = int(n)
    wanted = []
    for cond in conditions.split("&"):
        if "=" not in cond:
            raise CiteError("%s: bad selector %r" % (path, selector))
        wanted.append(cond.split("=", 1))
    found = [v for _, v in records
             if isinstance(v, dict) and all(k in v and json_value_str(v[k]) == w for k, w in wanted)]
    if len(found) < max(nth, 1):
        raise CiteError("%s: no record %r" % (path, selector))
    return found[max(nth, 1) - 1]


def pointer(doc, p):
    """RFC 6901 JSON pointer."""
    cur = doc
    for part in p.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(p)
    return cur


def match_pattern(text, pattern):
    if "{}" not in pattern:
        return ("text", pattern) if pattern in text else None
    prefix, suffix = pattern.split("{}", 1)
    pos = 0
    while True:
        at = text.find(prefix, pos)
        if at < 0:
            return None
        rest = text[at + len(prefix):]
        n = 0
        while n < len(rest) and (rest[n] in DIGITS or rest[n] == "." or (n == 0 and rest[n] in "+-")):
            n += 1
        if n > 0 and rest[n:].startswith(suffix):
            try:
                return float(rest[:n])
            except ValueError:
                pass
        pos = at + 1


def eval_ref(ref):
    path = ref["path"]
    text = read(path)
    if ref["pattern"] is not None:
        v = match_pattern(text, ref["pattern"])
        if v is None:
            raise CiteError("%s: does not contain %r" % (path, ref["pattern"]))
        return v
    rec = select(path, text, ref["selector"])
    if ref["pointer"] is not None:
        try:
            rec = pointer(rec, ref["pointer"])
        except KeyError:
            raise CiteError("%s: no %s in the selected record" % (path, ref["pointer"]))
    if isinstance(rec, bool):
        raise CiteError("%s: %r is not a number" % (path, rec))
    if isinstance(rec, (int, float)):
        return float(rec)
    if isinstance(rec, str):
        try:
            return float(rec.strip())
        except ValueError:
            pass
    raise CiteError("%s: %r is not a number" % (path, rec))


def format_like(value, figure):
    """value written the way figure is: same decimals, thousands commas if it had any."""
    plain = figure.replace(",", "")
    decimals = len(plain) - plain.index(".") - 1 if "." in plain else 0
    if "," in figure:
        s = "{:,.{}f}".format(value, decimals)
    else:
        s = "{:.{}f}".format(value, decimals)
    return s


def process(doc, write):
    path = os.path.join(ROOT, doc)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    problems, changes = [], []
    pieces, last = [], 0
    for line, span, expr in citations(text):
        where = "%s:%d" % (doc, line)
        if span is None:
            problems.append("%s: no figure before <!-- %s -->" % (where, expr))
            continue
        figure = text[span[0]:span[1]]
        try:
            value = evaluate(parse_expr(expr))
        except CiteError as e:
            problems.append("%s: %s <!-- %s -->: %s" % (where, figure, expr, e))
            continue
        if isinstance(value, tuple):
            if figure not in value[1]:
                problems.append("%s: %s is not in the cited text %r" % (where, figure, value[1]))
            continue
        plain = figure.replace(",", "").replace("\u2212", "-")
        decimals = len(plain) - plain.index(".") - 1 if "." in plain else 0
        if abs(value - float(plain)) > 0.5 * 10 ** -decimals * (1 + 1e-9) + 1e-12:
            new = format_like(value, figure)
            changes.append("%s: %s -> %s  (%s)" % (where, figure, new, expr))
            pieces.append(text[last:span[0]])
            pieces.append(new)
            last = span[1]
    pieces.append(text[last:])
    if write and changes:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(pieces))
        os.replace(tmp, path)
    return problems, changes


def main(argv):
    write = "--check" not in argv
    docs = [a for a in argv if not a.startswith("--")] or DOCUMENTS
    bad = False
    for doc in docs:
        if not os.path.exists(os.path.join(ROOT, doc)):
            continue
        problems, changes = process(doc, write)
        for c in changes:
            print(("rewrote " if write else "differs ") + c)
        for p in problems:
            print("error " + p, file=sys.stderr)
        bad = bad or bool(problems) or (not write and bool(changes))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
