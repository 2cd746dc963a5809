"""The README is a test: every shell command of its tour runs against a fresh admin, and each
output the README shows (a `#=> ` line after the command) must match what the command printed.
An expected JSON value matches when it is a subset of the actual one (objects: the keys shown;
lists: the elements shown, in order); the string "..." matches anything.

usage: readme_test.py path/to/mockarty path/to/repo
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402

BINARY = None
REPO = None


def subset(expected, actual):
    if expected == "...":
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) >= len(expected) and all(
            subset(e, a) for e, a in zip(expected, actual))
    return expected == actual


def commands(markdown):
    """(command, expected-or-None) for every sh block: a command starts at column 0 with a
    letter and continues on indented lines and lines starting with '}'; `#=> ` gives its output.
    Variable assignments (NAME=value) are collected as a prelude for the commands after them."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        current = None
        for line in block.splitlines():
            if line.startswith("#=>"):
                out[-1] = (out[-1][0], line[3:].strip())
                current = None
            elif line.startswith("#") or not line.strip():
                current = None
            elif line[0] in " }" and current is not None:
                out[-1] = (out[-1][0] + "\n" + line, None)
            else:
                current = line
                out.append((re.sub(r"\s+#[^'\"]*$", "", line), None))
    return out


class ReadmeTest(unittest.TestCase):
    def test_tour(self):
        with open(os.path.join(REPO, "README.md")) as f:
            cmds = commands(f.read())
        runnable = [c for c in cmds if c[0].startswith(("curl", "M="))]
        self.assertGreaterEqual(len(runnable), 8, "the README's tour went missing")
        self.assertGreaterEqual(sum(1 for c in runnable if c[1]), 5)
        m = Mockarty(BINARY).start()
        try:
            prelude = ""
            for cmd, expected in runnable:
                cmd = cmd.replace("localhost:5770", "127.0.0.1:%d" % m.port)
                if re.match(r"^[A-Z_]+=\S+$", cmd):
                    prelude += cmd + "\n"
                    continue
                r = subprocess.run(["bash", "-c", prelude + cmd], capture_output=True, text=True,
                                   timeout=20)
                self.assertEqual(r.returncode, 0, "%s\n%s" % (cmd, r.stderr))
                if expected is None:
                    continue
                try:
                    actual = json.loads(r.stdout)
                except ValueError:
                    self.fail("%s\nprinted no JSON: %r" % (cmd, r.stdout))
                self.assertTrue(subset(json.loads(expected), actual),
                                "%s\nREADME shows: %s\nserver said:  %s" % (cmd, expected,
                                                                            r.stdout))
        finally:
            code, err = m.stop()
            shutil.rmtree(m.dir, ignore_errors=True)
        self.assertTrue(code == 0 and "LeakSanitizer" not in err and "runtime error" not in err,
                        err)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    REPO = sys.argv.pop(1)
    unittest.main(verbosity=2)
