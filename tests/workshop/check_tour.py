#!/usr/bin/env python3
"""check_tour.py - every code reference in the reading tour names something that exists.

    python3 tests/workshop/check_tour.py [--root DIR] [FILE.md ...]

With no files: servers/README.md (the tour), tests/workshop/README.md and every README.md under
workloads/workshop/.
Exit status 0 when every reference holds, 1 otherwise (each bad one printed with its line).

What is a reference, in the Markdown text outside fenced code blocks:

  `path/file.c:name`        file exists and defines `name` (below); a header may declare it
  `path/file.h:type.member` the struct or union `type` in the file has a member `member`
  `path/file.c`             a path on its own (starting shared/, servers/, tests/, workloads/,
                            docker/): it exists
  [text](relative/path)     a link to a file of the tree: it exists

What "defines" means, per kind of file, on the source with comments and string literals
blanked out (so a name in a comment or a message never counts):

  .c, .h    a function definition at file scope (its name, its parameter list, then `{`);
            in a header also a prototype; a macro (`#define name`); a struct, union or enum
            tag; an enumerator; a typedef name; a variable declared at file scope
  .S        a label (`name:`)
  .py       `def name`, `class name`, or `name =` at the start of a line
  .toml     a key or a table name

A call, a use in an expression, or a mention in a comment is not a definition: the point is
that the tour's `file:name` still leads to the code that does the step.
"""

import argparse
import functools
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP_DIRS = ("shared/", "servers/", "tests/", "workloads/", "docker/")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
REFERENCE = re.compile(r"^([\w./-]+\.(?:c|h|S|py|toml)):([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?$")
PATH_ONLY = re.compile(r"^[\w./-]+$")
IDENT = r"[A-Za-z_]\w*"


def default_files(root):
    files = [root / "servers" / "README.md", root / "tests" / "workshop" / "README.md"]
    files += sorted((root / "workloads" / "workshop").glob("**/README.md"))
    return [f for f in files if f.exists()]


def without_fences(text):
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return out


def references(text):
    """(line number, kind, value) for every reference in a Markdown text."""
    found = []
    for n, line in enumerate(without_fences(text), 1):
        for span in CODE_SPAN.findall(line):
            span = span.strip()
            m = REFERENCE.match(span)
            if m:
                found.append((n, "name", (m.group(1), m.group(2), m.group(3))))
            elif span.startswith(TOP_DIRS) and PATH_ONLY.match(span):
                found.append((n, "path", span))
        for target in LINK.findall(line):
            if not re.match(r"^[a-z]+:", target) and not target.startswith("#"):
                found.append((n, "link", target.split("#")[0]))
    return found


# -- C ---------------------------------------------------------------------------------------------

def blank_c(src):
    """Comments, string and character literals replaced by spaces (newlines kept), so that
    offsets and line numbers are unchanged and nothing inside them can match."""
    out = list(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
        else:
            i += 1
            continue
        for k in range(i, j):
            if out[k] != "\n":
                out[k] = " "
        i = j
    return "".join(out)


def depths(src):
    """Brace depth at every offset (the depth before the character there)."""
    d, out = 0, []
    for c in src:
        out.append(d)
        if c == "{":
            d += 1
        elif c == "}":
            d = max(0, d - 1)
    return out


def matching(src, i, open_c, close_c):
    """Offset just past the bracket that closes the one at i, or -1."""
    d = 0
    for j in range(i, len(src)):
        if src[j] == open_c:
            d += 1
        elif src[j] == close_c:
            d -= 1
            if d == 0:
                return j + 1
    return -1


def skip_attributes(src, j):
    """Past white space and __attribute__((...)) after a declarator."""
    while True:
        while j < len(src) and src[j].isspace():
            j += 1
        if src.startswith("__attribute__", j):
            k = src.find("(", j)
            j = matching(src, k, "(", ")") if k >= 0 else len(src)
            if j < 0:
                return len(src)
            continue
        return j


def c_function(src, depth, name, header):
    for m in re.finditer(r"\b%s\s*\(" % re.escape(name), src):
        if depth[m.start()] != 0:
            continue
        # the name must start a declarator: not a call in an initialiser (`= name(`)
        before = src[:m.start()].rstrip()
        if before.endswith(("=", ",", "(", "return")):
            continue
        end = matching(src, m.end() - 1, "(", ")")
        if end < 0:
            continue
        j = skip_attributes(src, end)
        if j < len(src) and (src[j] == "{" or (header and src[j] == ";")):
            return True
    return False


def bodies(src, keyword, tag=None):
    """The text between the braces of each `keyword [tag] {` ... `}`."""
    pattern = r"\b%s\s*%s\s*\{" % (keyword, re.escape(tag) if tag else r"(?:%s)?" % IDENT)
    for m in re.finditer(pattern, src):
        end = matching(src, m.end() - 1, "{", "}")
        if end > 0:
            yield src[m.end():end - 1]


@functools.lru_cache(maxsize=None)
def prepared(src):
    """The blanked source and its brace depths, once per file text."""
    blank = blank_c(src)
    return blank, depths(blank)


def c_defines(src, name, header):
    src, depth = prepared(src)
    if c_function(src, depth, name, header):
        return True
    if re.search(r"(?m)^[ \t]*#[ \t]*define[ \t]+%s\b" % re.escape(name), src):
        return True
    if re.search(r"\b(?:struct|union|enum)\s+%s\s*\{" % re.escape(name), src):
        return True
    for body in bodies(src, "enum"):
        if re.search(r"(?:^|[{,])\s*%s\s*(?:=|,|$)" % re.escape(name), body.strip() + ","):
            return True
    for m in re.finditer(r"\btypedef\b[^;]*;", src):
        if re.search(r"\b%s\b\s*(?:\)|;|\[)" % re.escape(name), m.group(0)):
            return True
    # a variable at file scope: `type name;`, `type name = ...`, `type name[...]`
    for m in re.finditer(r"\b%s\b\s*(?:\[[^\]]*\]\s*)*(?:=|;)" % re.escape(name), src):
        if depth[m.start()] == 0:
            line_start = src.rfind("\n", 0, m.start()) + 1
            if not src[line_start:m.start()].lstrip().startswith("#"):
                return True
    return False


def c_member(src, struct, member):
    src = prepared(src)[0]
    for keyword in ("struct", "union"):
        for body in bodies(src, keyword, struct):
            if re.search(r"\b%s\b\s*(?:[;,:\[]|\))" % re.escape(member), body):
                return True
    return False


# -- the other kinds of files ---------------------------------------------------------------------

def other_defines(path, src, name):
    suffix = path.suffix
    if suffix == ".S":
        return re.search(r"(?m)^\s*%s\s*:" % re.escape(name), src) is not None
    if suffix == ".py":
        return re.search(r"(?m)^\s*(?:def|class)\s+%s\b|^%s\s*=" % (re.escape(name),
                                                                      re.escape(name)), src)
    if suffix == ".toml":
        return re.search(r"(?m)^\s*%s\s*=|^\s*\[[^\]]*\b%s\b[^\]]*\]" % (re.escape(name),
                                                                        re.escape(name)), src)
    return False


def check_reference(root, file, name, member):
    path = root / file
    if not path.is_file():
        return "no such file"
    src = path.read_text(errors="replace")
    if path.suffix in (".c", ".h"):
        if member is not None:
            return None if c_member(src, name, member) else \
                "no struct or union %s with a member %s" % (name, member)
        return None if c_defines(src, name, path.suffix == ".h") else "does not define %s" % name
    if member is not None:
        return "members are for C structs only"
    return None if other_defines(path, src, name) else "does not define %s" % name


def check_file(root, md):
    """Problems in one Markdown file, as "FILE:LINE: `ref`: why"; and how many references."""
    problems, count = [], 0
    text = md.read_text()
    try:
        shown = md.relative_to(root)
    except ValueError:
        shown = md
    for line, kind, value in references(text):
        count += 1
        if kind == "name":
            file, name, member = value
            why = check_reference(root, file, name, member)
            ref = "%s:%s%s" % (file, name, "." + member if member else "")
        elif kind == "path":
            why = None if (root / value).exists() else "no such file or directory"
            ref = value
        else:
            why = None if (md.parent / value).exists() else "the link leads nowhere"
            ref = value
        if why:
            problems.append("%s:%d: `%s`: %s" % (shown, line, ref, why))
    return problems, count


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(ROOT), help="the source root (default: this tree)")
    p.add_argument("files", nargs="*", help="Markdown files (default: the tour and the workshop)")
    opts = p.parse_args(argv)
    root = Path(opts.root).resolve()
    files = [Path(f).resolve() for f in opts.files] or default_files(root)
    problems, total = [], 0
    for md in files:
        found, count = check_file(root, md)
        problems += found
        total += count
        print("%s: %d references" % (os.path.relpath(md, root), count))
    for line in problems:
        print("BAD " + line)
    if total == 0:
        print("no references found: nothing was checked")
        return 1
    print("%d references, %d bad" % (total, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
