"""The README is a test, and so are the API examples of docs/api.md: every shell command of their
`sh` blocks runs against a fresh admin (one per file, in order), and each output they show must
match what the command printed: a `#=> ` line after the command, or a trailing `# {...}` comment
that is JSON (other trailing comments are prose).
An expected JSON value matches when it is a subset of the actual one (objects: the keys shown;
lists: the elements shown, in order); the string "..." matches anything, and a unix-ms time
any unix-ms time.

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
    # A time in unix ms (as the docs print one) stands for any time.
    if isinstance(expected, int) and expected > 10 ** 12:
        return isinstance(actual, int) and actual > 10 ** 12
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) >= len(expected) and all(
            subset(e, a) for e, a in zip(expected, actual))
    return expected == actual


def trailing_json(line):
    """The JSON a trailing `# ...` comment shows, or None when it is prose."""
    m = re.search(r"\s#\s*([\[{].*)$", line)
    if not m:
        return None
    try:
        json.loads(m.group(1))
        return m.group(1)
    except ValueError:
        return None


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
                out.append((re.sub(r"\s+#[^'\"]*$", "", line), trailing_json(line)))
    return out


class ReadmeTest(unittest.TestCase):
    def run_file(self, name, min_commands, min_checked):
        with open(os.path.join(REPO, name)) as f:
            cmds = commands(f.read())
        runnable = [c for c in cmds if re.match(r"^(curl|(export )?M=)", c[0])]
        self.assertGreaterEqual(len(runnable), min_commands, "%s: its examples went missing" % name)
        self.assertGreaterEqual(sum(1 for c in runnable if c[1]), min_checked)
        m = Mockarty(BINARY).start()
        try:
            prelude = ""
            for cmd, expected in runnable:
                cmd = re.sub(r"(https?://)?localhost:5770", "http://127.0.0.1:%d" % m.port, cmd)
                if re.match(r"^(export )?[A-Z_]+=\S+$", cmd):
                    prelude += cmd + "\n"
                    continue
                r = subprocess.run(["bash", "-c", prelude + cmd], capture_output=True, text=True,
                                   timeout=20)
                self.assertEqual(r.returncode, 0, "%s: %s\n%s" % (name, cmd, r.stderr))
                if expected is None:
                    continue
                try:
                    actual = json.loads(r.stdout)
                except ValueError:
                    self.fail("%s: %s\nprinted no JSON: %r" % (name, cmd, r.stdout))
                self.assertTrue(subset(json.loads(expected), actual),
                                "%s: %s\nthe docs show: %s\nserver said:   %s" %
                                (name, cmd, expected, r.stdout))
        finally:
            code, err = m.stop()
            shutil.rmtree(m.dir, ignore_errors=True)
        self.assertTrue(code == 0 and "LeakSanitizer" not in err and "runtime error" not in err,
                        err)

    def test_readme_tour(self):
        self.run_file("README.md", 8, 5)

    def test_api_examples(self):
        self.run_file("docs/api.md", 15, 4)


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    REPO = sys.argv.pop(1)
    unittest.main(verbosity=2)
