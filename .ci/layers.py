#!/usr/bin/env python3
"""The house rules of src/ (docs/architecture.md), checked: every module imports only modules of
its own layer or the layers below it, and no two files import each other, directly or round a
cycle. Reads `crate::…` paths outside comments and `#[cfg(test)]` code.

Usage: .ci/layers.py [SRC]   (exit 1 with the offending imports listed)"""
import os
import re
import sys

# Bottom to top. A module belongs to the first prefix that matches it.
LAYERS = [
    ["decimals", "duration", "error", "resource_usage", "os_limits", "input_file"],
    ["metrics", "target"],
    ["clients", "scenario"],
    ["compiled"],
    ["report"],
    ["gate"],
    ["schedule"],
    ["swarm"],
    ["runtime"],
    ["estimate", "compare"],
    ["run"],
    ["capacity", "merge"],
    ["crate"],  # lib.rs
    ["cli"],
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].replace(os.sep, "::")
    rel = re.sub(r"(::)?mod$", "", rel)
    return "crate" if rel in ("", "lib", "main") else rel


def layer(module):
    return RANK.get(module.split("::")[0], RANK["crate"] if module == "crate" else None)


def code_of(path):
    text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
    return "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    files = {}
    for d, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                files[module_of(src, os.path.join(d, n))] = os.path.join(d, n)

    def resolve(path):
        parts = path.split("::")
        for k in range(len(parts), 0, -1):
            if "::".join(parts[:k]) in files:
                return "::".join(parts[:k])
        return None

    problems = []
    edges = {m: set() for m in files}
    for m, p in sorted(files.items()):
        mine = layer(m)
        if mine is None:
            problems.append(f"{m}: not in any layer (add it to .ci/layers.py and docs/architecture.md)")
            continue
        for used in sorted(set(re.findall(r"\bcrate::([a-z_][\w:]*)", code_of(p)))):
            target = resolve(used.rstrip(":"))
            # A child may use its parent (`crate::compiled::Plan` from `compiled::load`).
            if not target or target == m or m.startswith(target + "::"):
                continue
            edges[m].add(target)
            theirs = layer(target)
            if theirs is not None and theirs > mine:
                problems.append(f"{m} imports {target}, a layer above it")

    # Cycles between files (Tarjan's strongly connected components).
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(files):
        if v not in index:
            visit(v)
    problems += [f"import cycle: {', '.join(c)}" for c in sccs]

    for p in problems:
        print(p)
    print(f"layers: {len(files)} modules, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
