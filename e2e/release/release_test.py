"""Builds the Release configuration (as `make build` does) into its own folder, then starts the
Release admin and serves the README's first mock with it.

usage: release_test.py path/to/repo path/to/build-folder
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "admin"))
from mockarty_proc import Mockarty  # noqa: E402

REPO = None
BUILD = None


class ReleaseTest(unittest.TestCase):
    def test_release_build_serves(self):
        cfg = subprocess.run(["cmake", "-S", REPO, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"],
                             capture_output=True, text=True)
        self.assertEqual(cfg.returncode, 0, cfg.stdout + cfg.stderr)
        targets = ["mockarty", "mockarty-resolver", "mockarty-operator"]
        if os.path.exists(os.path.join(REPO, "cmd", "mockarty-runner", "CMakeLists.txt")):
            targets.append("mockarty-runner")
        build = subprocess.run(["cmake", "--build", BUILD, "-j", "2", "--target"] + targets,
                               capture_output=True, text=True)
        errors = [l for l in build.stdout.splitlines() + build.stderr.splitlines()
                  if "error" in l.lower()]
        self.assertEqual(build.returncode, 0, "\n".join(errors[-30:]) or build.stderr[-3000:])
        m = Mockarty(os.path.join(BUILD, "cmd", "mockarty", "mockarty")).start()
        try:
            s, _, raw, _ = m.request("POST", "/api/v1/mocks", {
                "id": "user-by-id", "http": {"route": "/api/users/:id", "httpMethod": "GET"},
                "response": {"statusCode": 200, "payload": {"id": "$.pathParam.id"}}})
            self.assertEqual(s, 201, raw)
            self.assertEqual(m.request("GET", "/api/users/42")[:2], (200, {"id": "42"}))
        finally:
            code, err = m.stop()
            shutil.rmtree(m.dir, ignore_errors=True)
        self.assertEqual(code, 0, err)


if __name__ == "__main__":
    REPO = sys.argv.pop(1)
    BUILD = sys.argv.pop(1)
    unittest.main(verbosity=2)
