"""The project's documents stand alone: README.md and every docs/**/*.md link
only to files of this repository (each relative link resolves, and its
#anchor names a heading of the target), name no path outside it (no
../shared/, no spec file users never get), and show the examples' code as it
is in examples/ (tools/doc_includes.py --check)."""
import glob
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
UP_PATH = re.compile(r"(?<![\w./])((?:\.\./)+[\w./-]*)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
# Words that only make sense outside this repository.
OUTSIDE = ("../shared", "shared/spec", "CONTRACT.md", "CONTRACT §", "/work/",
           "workflux-webhooks-guide")


def documents():
    docs = [os.path.join(ROOT, "README.md")]
    docs += sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))
    return docs


def slug(heading):
    """GitHub's anchor for a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    with open(path) as f:
        text = FENCE.sub("", f.read())
    return {slug(h) for h in re.findall(r"(?m)^#+\s+(.*)$", text)}


def inside(path):
    root = os.path.realpath(ROOT) + os.sep
    return os.path.realpath(path).startswith(root)


class DocsTest(unittest.TestCase):
    def test_documents_exist(self):
        names = [os.path.relpath(d, ROOT) for d in documents()]
        for want in ("README.md", "docs/api.md", "docs/receiving.md"):
            self.assertIn(want, names)

    def test_links_resolve_inside_the_repo(self):
        for doc in documents():
            with open(doc) as f:
                text = FENCE.sub("", f.read())
            for target in LINK.findall(text):
                with self.subTest(doc=os.path.relpath(doc, ROOT), link=target):
                    if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                        self.assertRegex(target, r"^(https?|mailto):")
                        continue
                    path, _, frag = target.partition("#")
                    dest = os.path.normpath(os.path.join(os.path.dirname(doc), path)) \
                        if path else doc
                    self.assertFalse(path.startswith("/"), "absolute path: " + target)
                    self.assertTrue(inside(dest), "outside the repository: " + target)
                    self.assertTrue(os.path.exists(dest), "no such file: " + target)
                    if frag and dest.endswith(".md"):
                        self.assertIn(frag, anchors(dest), "no heading for #" + frag)

    def test_no_path_outside_the_repo(self):
        for doc in documents():
            with open(doc) as f:
                text = f.read()
            rel = os.path.relpath(doc, ROOT)
            for word in OUTSIDE:
                self.assertFalse(word in text, "%s refers to %r, outside the repository"
                                 % (rel, word))
            for path in UP_PATH.findall(text):
                dest = os.path.normpath(os.path.join(os.path.dirname(doc), path))
                self.assertTrue(inside(dest), "%s: %s leaves the repository" % (rel, path))

    def test_included_code_is_current(self):
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "doc_includes.py"),
                            "--check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        with open(os.path.join(ROOT, "docs", "receiving.md")) as f:
            text = f.read()
        blocks = re.findall(r"<!-- include (\S+) .*? -->\n```\w*\n(.*?)\n```", text, re.S)
        self.assertEqual(len(blocks), 8, "one included block per example language")
        for path, code in blocks:
            with open(os.path.join(ROOT, path)) as f:
                self.assertIn(code, f.read())


if __name__ == "__main__":
    unittest.main()
