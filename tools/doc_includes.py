#!/usr/bin/env python3
"""Fills the code blocks of docs/*.md that follow an include line

    <!-- include examples/receivers/go/receiver.go verifyWorkflux verifyDelivery -->
    ```go
    ```

with the lines of that file from the definition of the first name (with the
comment above it) to the end of the definition of the last, so the docs show
the examples' code as it is. `--check` changes nothing and exits 1 when a
block is out of date (tests/e2e/test_docs.py runs it).

    python3 tools/doc_includes.py [--check] [FILE.md ...]   (default: docs/*.md)
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r"^<!-- include (\S+) (\w+) (\w+) -->$")
COMMENT = re.compile(r"^\s*(//|#|/\*|\*|\*/)")


def indent(line):
    return line[:len(line) - len(line.lstrip())]


def definition(lines, name, start=0):
    """Index of the line defining name: the first with `name(` after start."""
    pat = re.compile(r"(?<![\w$])%s\s*\(" % re.escape(name))
    for i in range(start, len(lines)):
        if pat.search(lines[i]) and not COMMENT.match(lines[i]):
            return i
    raise ValueError("no definition of %s" % name)


def first_line(lines, i):
    """Where the definition at i begins: a C return type on the line before,
    and the comment block above."""
    if i > 0 and not lines[i][0].isspace() and lines[i - 1].strip() and \
            not lines[i - 1].rstrip().endswith((";", "}", "*/")) and not COMMENT.match(lines[i - 1]):
        i -= 1
    while i > 0 and COMMENT.match(lines[i - 1]):
        i -= 1
    return i


def last_line(lines, i, path):
    """The last line of the definition that starts at i."""
    ind = indent(lines[i])
    if path.endswith(".py"):
        last = i
        for j in range(i + 1, len(lines)):
            if lines[j].strip():
                if len(indent(lines[j])) <= len(ind):
                    return last
                last = j
        return last
    close = ind + ("end" if path.endswith(".rb") else "}")
    for j in range(i + 1, len(lines)):
        if lines[j].rstrip() == close:
            return j
    raise ValueError("no end of the definition on line %d" % (i + 1))


def excerpt(path, first, last):
    with open(os.path.join(ROOT, path)) as f:
        lines = f.read().split("\n")
    a = definition(lines, first)
    b = definition(lines, last, a)
    return "\n".join(lines[first_line(lines, a):last_line(lines, b, path) + 1])


def fill(text):
    """text with every included block filled in."""
    out = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        out.append(lines[i])
        m = INCLUDE.match(lines[i])
        if m and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            out.append(lines[i + 1])
            j = i + 2
            while j < len(lines) and lines[j] != "```":
                j += 1
            out.append(excerpt(*m.groups()))
            out.append("```")
            i = j + 1
            continue
        i += 1
    return "\n".join(out)


def main(argv):
    check = "--check" in argv
    files = [a for a in argv if a != "--check"] or sorted(glob.glob(os.path.join(ROOT, "docs",
                                                                                 "*.md")))
    stale = []
    for path in files:
        with open(path) as f:
            text = f.read()
        new = fill(text)
        if new == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not check:
            with open(path, "w") as f:
                f.write(new)
    if check and stale:
        print("out of date: %s; run python3 tools/doc_includes.py" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
