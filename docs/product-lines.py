#!/usr/bin/env python3
"""Each product crate's share of the product lines (issue 24: no product crate over
about 35 % without a written reason).

A product line is a non-blank line of a crate's `src/` that is not a `//` comment (doc
comments included: they are not product) and not inside a `#[cfg(test)] mod … { }`.
The product crates are the workspace's default members: `test-support` and the fuzz
targets are not product. Run from the repository root: python3 docs/product-lines.py
"""
import os
import sys

PRODUCT = ["protocol", "durable", "clock", "pki", "store", "media", "gateway", "agent",
           "provisioning", "certs-dev", "loadtest"]


def outside_tests(path):
    """The lines of one source file that are not inside a `#[cfg(test)] mod … { }`."""
    test_depth = None  # brace depth inside a #[cfg(test)] module, None outside one
    after_cfg_test = False
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if test_depth is not None:
            test_depth += line.count("{") - line.count("}")
            if test_depth <= 0:
                test_depth = None
            continue
        if s == "#[cfg(test)]":
            after_cfg_test = True
            continue
        if after_cfg_test and s.startswith("mod ") and s.endswith("{"):
            test_depth = 1
            after_cfg_test = False
            continue
        after_cfg_test = False
        yield line


def product_lines(path):
    """The product lines of one source file."""
    return sum(1 for line in outside_tests(path) if line.strip() and not line.strip().startswith("//"))


def crate_lines(root, crate):
    total = 0
    for folder, _, files in os.walk(os.path.join(root, crate, "src")):
        total += sum(product_lines(os.path.join(folder, f)) for f in files if f.endswith(".rs"))
    return total


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    lines = {crate: crate_lines(root, crate) for crate in PRODUCT if os.path.isdir(os.path.join(root, crate))}
    total = sum(lines.values())
    for crate, n in sorted(lines.items(), key=lambda kv: -kv[1]):
        print(f"{crate:14} {n:6} {100 * n / total:5.1f} %")
    print(f"{'total':14} {total:6}")


if __name__ == "__main__":
    main()
