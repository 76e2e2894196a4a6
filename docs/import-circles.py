#!/usr/bin/env python3
"""Import circles between a product crate's modules (issue 24: "no import circle in
product code").

Modules are compared with their siblings, level by level: at the crate root the
top-level modules (`config`, `deadlines`, `state`, …), inside a folder module its
children, and so on. Module `a` uses sibling `b` when any file under `a` names a path
into `b` (`crate::b::…`, `super::b::…` or `self::b::…`, in a `use` or inline). A circle
is a set of siblings that use each other round: each of them can only be read after the
others. A module naming its own parent or children is structure, not a circle; nor is a
`#[cfg(test)]` module (tests may reach anywhere), a comment or a doc link.

Run from the repository root: python3 docs/import-circles.py [--levels] [crate …]
Prints each circle with one line per use that closes it, and exits 1 if there is any.
With --levels it also prints each crate's top-level modules by level: level 0 imports
no sibling, level n imports only lower levels (the order to read a crate in, from the
bottom). The product crates are those of docs/product-lines.py.
"""
import os
import re
import sys

sys.dont_write_bytecode = True  # reading the tree must not write into it
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
_lines = __import__("product-lines")
PRODUCT, outside_tests = _lines.PRODUCT, _lines.outside_tests


def product_text(path):
    """The file without comments and without `#[cfg(test)] mod … { }` blocks."""
    out = []
    for line in outside_tests(path):
        # Strings may hold `//` (URLs); only a comment outside one is cut.
        in_str = False
        cut = len(line)
        i = 0
        while i < len(line) - 1:
            c = line[i]
            if c == "\\" and in_str:
                i += 2
                continue
            if c == '"':
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
            i += 1
        out.append(line[:cut])
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e'] (aliases dropped)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start], tree[start + 1:i]
                parts, d, last = [], 0, 0
                for j, ch in enumerate(inner):
                    if ch == "{":
                        d += 1
                    elif ch == "}":
                        d -= 1
                    elif ch == "," and d == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                return [p for part in parts if part for p in expand_use(prefix + part)]
    return [re.sub(r"::self$", "", tree)]


USE = re.compile(r"\buse\s+([^;]*);", re.S)
INLINE = re.compile(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)")


def paths_in(text):
    """Every path that starts at `crate`, `super` or `self`."""
    paths = []
    for m in USE.finditer(text):
        paths += [p for p in expand_use(m.group(1)) if p.split("::")[0] in ("crate", "super", "self")]
    rest = USE.sub("", text)
    paths += INLINE.findall(rest)
    return paths


def module_of(src, path):
    """`src/a/b.rs` → ['a', 'b']; `src/a/mod.rs` → ['a']; `src/lib.rs` → []."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod" or rel in (["lib"], ["main"]):
        rel = rel[:-1]
    return rel


def absolute(module, is_dir_module, path):
    """A path named in `module` as a list of segments from the crate root."""
    segs = path.split("::")
    if segs[0] == "crate":
        return segs[1:]
    # `self` and `super` are relative to the module the file defines.
    base = list(module)
    while segs and segs[0] in ("self", "super"):
        if segs[0] == "super":
            base = base[:-1]
        segs = segs[1:]
    return base + segs


def circles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def crate_graph(root, crate):
    """Sibling uses: parent module → {module → {sibling it uses → [where]}}."""
    src = os.path.join(root, crate, "src")
    files = []
    for folder, _, names in os.walk(src):
        files += [os.path.join(folder, n) for n in names if n.endswith(".rs")]
    modules = {tuple(module_of(src, f)) for f in files}
    # sibling edges: parent -> {child_a -> {child_b -> [why]}}
    edges = {}
    for f in sorted(files):
        module = module_of(src, f)
        rel = os.path.relpath(f, root)
        for p in paths_in(product_text(f)):
            target = absolute(module, f.endswith("mod.rs"), p)
            # Where the two paths part: the siblings are the first differing segments.
            n = 0
            while n < min(len(module), len(target)) and module[n] == target[n]:
                n += 1
            if n >= len(module) or n >= len(target):
                continue  # naming an ancestor, itself or a descendant
            a, b = module[n], target[n]
            if tuple(target[: n + 1]) not in modules:
                continue  # an item of the parent, not a sibling module
            parent = tuple(module[:n])
            edges.setdefault(parent, {}).setdefault(a, {}).setdefault(b, []).append(f"{rel}: {p}")
    return edges


def crate_circles(root, crate):
    """Every circle among the siblings of any module of the crate."""
    edges = crate_graph(root, crate)
    found = []
    for parent, graph in sorted(edges.items()):
        for comp in circles(graph):
            found.append((crate, parent, comp, graph))
    return found


def levels(graph, names):
    """Each name's level: 0 without uses, else one above the highest it uses (no
    circle may be left, or this would not end)."""
    level = {}

    def of(name):
        if name not in level:
            level[name] = 1 + max((of(used) for used in graph.get(name, {})), default=-1)
        return level[name]

    for name in names:
        of(name)
    return level


def main():
    root = "."
    args = sys.argv[1:]
    show_levels = "--levels" in args
    args = [a for a in args if a != "--levels"]
    crates = args or [c for c in PRODUCT if os.path.isdir(os.path.join(root, c, "src"))]
    found = []
    for crate in crates:
        circles_here = crate_circles(root, crate)
        found += circles_here
        if show_levels and not circles_here:
            graph = crate_graph(root, crate).get((), {})
            src = os.path.join(root, crate, "src")
            names = sorted({n[:-3] if n.endswith(".rs") else n for n in os.listdir(src)}
                           - {"lib", "main"})
            level = levels(graph, names)
            for n in range(max(level.values(), default=-1) + 1):
                print(f"{crate} level {n}: {', '.join(x for x in names if level[x] == n)}")
    for crate, parent, comp, graph in found:
        where = "::".join([crate, *parent])
        print(f"{where}: {' ⇄ '.join(comp)}")
        for a in comp:
            for b in comp:
                for why in graph.get(a, {}).get(b, [])[:3]:
                    print(f"    {a} → {b}  ({why})")
    if not found:
        print(f"no import circle in {', '.join(crates)}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
