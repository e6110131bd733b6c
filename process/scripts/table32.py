#!/usr/bin/env python3
"""Rewrites a wasm64 module's function table from table64 to a 32-bit table, in the
text form printed by binaryen's wasm-dis (folded s-expressions).

Why: LLVM 22's wasm-ld always writes a 64-bit function table for wasm64, and Node 20's
memory64 implementation has no table64 ("invalid table elements limits flags"), while
binaryen's --table64-lowering is an alias of --memory64-lowering (it would lower memory
too). Changes:
  * `(table $t i64 N M funcref)`     -> `(table $t N M funcref)`
  * `(elem $e (i64.const K) ...)`    -> `(elem $e (i32.const K) ...)`
  * every `(call_indirect ...)` gets its last operand (the table index, an i64 on
    wasm64) wrapped in `(i32.wrap_i64 ...)`.
Any other table instruction would need an i32 operand too: the script refuses them
(none occur today), and wasm-as validates the result.

usage: table32.py in.wat out.wat
"""
import re
import sys

TOKEN = re.compile(r'\(;.*?;\)|;;[^\n]*|"(?:[^"\\]|\\.)*"|\(|\)', re.S)
CALL_INDIRECT = re.compile(r'\((?:return_)?call_indirect[\s)]')
TABLE_OPS = re.compile(r'\(table\.(?:size|grow|get|set|fill|copy|init)[\s)]')


def rewrite(text):
    if TABLE_OPS.search(text):
        sys.exit("table32: table.* instructions found; extend this script for them")
    text, n_tables = re.subn(r'^(\s*\(table (?:\$\S+ )?)i64 ', r'\1', text, flags=re.M)
    text, n_elems = re.subn(r'^(\s*\(elem (?:\$\S+ )?(?:\(table \$\S+\) )?)\(i64\.const ', r'\1(i32.const ',
                            text, flags=re.M)
    inserts = []          # (position, text)
    stack = []            # frames: [start, is_call_indirect, last_child_range]
    for m in TOKEN.finditer(text):
        tok = m.group()
        if tok == '(':
            start = m.start()
            stack.append([start, bool(CALL_INDIRECT.match(text, start)), None])
        elif tok == ')':
            start, is_ci, last_child = stack.pop()
            end = m.end()
            if is_ci:
                if last_child is None or text.startswith('(type ', last_child[0]):
                    sys.exit("table32: call_indirect without an index operand at offset %d" % start)
                inserts.append((last_child[0], '(i32.wrap_i64 '))
                inserts.append((last_child[1], ')'))
            if stack:
                stack[-1][2] = (start, end)
        # strings and comments are skipped as whole tokens
    if stack:
        sys.exit("table32: unbalanced parentheses")
    inserts.sort(key=lambda x: x[0])
    out, prev = [], 0
    for pos, s in inserts:
        out.append(text[prev:pos])
        out.append(s)
        prev = pos
    out.append(text[prev:])
    return ''.join(out), n_tables, n_elems, len(inserts) // 2


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    text = open(sys.argv[1], encoding='utf-8').read()
    out, n_tables, n_elems, n_calls = rewrite(text)
    if n_tables != 1:
        sys.exit("table32: expected one table64 definition, found %d" % n_tables)
    open(sys.argv[2], 'w', encoding='utf-8').write(out)
    print("table32: table -> i32, %d elem offsets, %d call_indirect indices wrapped"
          % (n_elems, n_calls), file=sys.stderr)


if __name__ == '__main__':
    main()
