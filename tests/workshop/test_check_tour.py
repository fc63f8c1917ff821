#!/usr/bin/env python3
"""test_check_tour.py - the tour's checker must reject what is wrong, not only accept the tour.

A small made-up tree (a .c file, a header, an assembly file, a Python file) and a Markdown
page with references: each good one must pass and each bad one must be reported, for the
reason expected. Then the real tour with one of its references broken (a name, a file, a
member) must fail. Python standard library only.
"""

import shutil
import sys
import tempfile
import unittest
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_tour  # noqa: E402

SOURCE_C = r"""
/* ghost() is only mentioned in this comment; so is struct phantom { int x; }. */
#include "x.h"
#define MAX_THINGS 8
#define SQUARE(x) ((x) * (x))

enum colour { RED, GREEN = 2, BLUE };
typedef int (*thing_fn)(int);
typedef unsigned long tally;

struct box {
    int width;
    struct { int inner; } nested;
    void (*on_open)(struct box *b);
    char label[16];
};

static int counter;
static const char *const names[] = {"a", "b"};
struct box the_box = {.width = 1};

int proto_only(int a);

static int helper(int a)
{
    return a + 1;
}

__attribute__((noinline)) struct box *attributed(void)
{
    return &the_box;
}

int multi_line(int a,
               int b)
{
    int local = helper(a) + b;  /* `local` is inside a function: not file scope */
    const char *s = "in_string(1)";
    use_only(s);
    return local + counter + (int)sizeof(names);
}
"""

SOURCE_H = r"""
#ifndef X_H
#define X_H
void declared(void);
static inline int inlined(void)
{
    return 0;
}
#endif
"""

SOURCE_S = """
    .globl ctx_switch
ctx_switch:
    ret
"""

SOURCE_PY = """
def launch():
    pass


class Server:
    pass


LIMIT = 3
"""

PAGE = """
Good:
`a/x.c:helper` `a/x.c:attributed` `a/x.c:multi_line` `a/x.c:MAX_THINGS` `a/x.c:SQUARE`
`a/x.c:colour` `a/x.c:GREEN` `a/x.c:BLUE` `a/x.c:thing_fn` `a/x.c:tally` `a/x.c:box`
`a/x.c:counter` `a/x.c:names` `a/x.c:the_box` `a/x.c:box.width` `a/x.c:box.inner`
`a/x.c:box.on_open` `a/x.c:box.label` `a/x.h:declared` `a/x.h:inlined` `a/y.S:ctx_switch`
`a/z.py:launch` `a/z.py:Server` `a/z.py:LIMIT` [a link](a/x.c)

```
`a/x.c:inside_a_fence` is not a reference: fenced blocks are commands and examples
```

Bad:
`a/x.c:ghost`
`a/x.c:phantom`
`a/x.c:use_only`
`a/x.c:in_string`
`a/x.c:proto_only`
`a/x.c:local`
`a/x.c:box.depth`
`a/x.c:nothing.width`
`a/missing.c:helper`
`a/x.c:declared`
`a/y.S:ret`
`a/z.py:pass`
[a broken link](a/nowhere.c)
`shared/not-there.c`
"""

BAD = {
    "a/x.c:ghost": "does not define",
    "a/x.c:phantom": "does not define",
    "a/x.c:use_only": "does not define",
    "a/x.c:in_string": "does not define",
    "a/x.c:proto_only": "does not define",  # a prototype in a .c file is not a definition
    "a/x.c:local": "does not define",
    "a/x.c:box.depth": "no struct or union box with a member depth",
    "a/x.c:nothing.width": "no struct or union nothing",
    "a/missing.c:helper": "no such file",
    "a/x.c:declared": "does not define",  # declared in x.h, not x.c
    "a/y.S:ret": "does not define",
    "a/z.py:pass": "does not define",
    "a/nowhere.c": "the link leads nowhere",
    "shared/not-there.c": "no such file or directory",
}


class CheckerTest(unittest.TestCase):
    def setUp(self):
        self.root = Path(tempfile.mkdtemp(prefix="check-tour-"))
        (self.root / "a").mkdir()
        (self.root / "a" / "x.c").write_text(SOURCE_C)
        (self.root / "a" / "x.h").write_text(SOURCE_H)
        (self.root / "a" / "y.S").write_text(SOURCE_S)
        (self.root / "a" / "z.py").write_text(SOURCE_PY)
        self.page = self.root / "page.md"
        self.page.write_text(PAGE)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def test_good_pass_and_bad_fail_for_their_reason(self):
        problems, count = check_tour.check_file(self.root, self.page)
        by_ref = {}
        for p in problems:
            ref = p.split("`")[1]
            by_ref[ref] = p
        self.assertEqual(sorted(by_ref), sorted(BAD), "\n".join(problems))
        for ref, why in BAD.items():
            self.assertIn(why, by_ref[ref])
        self.assertEqual(count, 25 + len(BAD))  # the fenced one is not counted

    def test_exit_status(self):
        self.assertEqual(check_tour.main(["--root", str(self.root), str(self.page)]), 1)
        good = self.root / "good.md"
        good.write_text(PAGE.split("Bad:")[0])
        self.assertEqual(check_tour.main(["--root", str(self.root), str(good)]), 0)
        empty = self.root / "empty.md"
        empty.write_text("no references at all\n")
        self.assertEqual(check_tour.main(["--root", str(self.root), str(empty)]), 1)


class RealTourTest(unittest.TestCase):
    """The tour itself passes, and each kind of breakage of one of its references fails."""

    def setUp(self):
        self.tour = check_tour.ROOT / "servers" / "README.md"
        self.text = self.tour.read_text()
        self.tmp = Path(tempfile.mkdtemp(prefix="check-tour-real-"))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def broken(self, old, new):
        self.assertIn(old, self.text)
        page = self.tmp / "README.md"
        page.write_text(self.text.replace(old, new, 1))
        # links are relative to the page: keep it where the tour is
        problems, _ = check_tour.check_file(check_tour.ROOT, page)
        return [p for p in problems if "link" not in p]

    def test_tour_passes(self):
        problems, count = check_tour.check_file(check_tour.ROOT, self.tour)
        self.assertEqual(problems, [])
        self.assertGreater(count, 100)

    def test_renamed_function_fails(self):
        problems = self.broken("`servers/evloop/exec.c:exec_fd`",
                               "`servers/evloop/exec.c:exec_fdx`")
        self.assertEqual(len(problems), 1, problems)

    def test_function_of_another_file_fails(self):
        problems = self.broken("`servers/evloop/exec.c:exec_fd`", "`servers/evloop/loop.c:exec_fd`")
        self.assertEqual(len(problems), 1, problems)

    def test_missing_member_fails(self):
        problems = self.broken("`shared/req_impl.h:req.db_op`", "`shared/req_impl.h:req.db_ops`")
        self.assertEqual(len(problems), 1, problems)


if __name__ == "__main__":
    unittest.main(verbosity=2)
