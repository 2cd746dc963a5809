#!/usr/bin/python3
"""Checks the container image's runtime stage against the binaries of a build tree: every shared
library a built binary needs (ldd) belongs to a Debian package (dpkg -S) that the runtime stage
installs, or that one of those depends on, or that debian:12-slim already has. Libraries the
binary names itself (DT_NEEDED) must come from a listed package or the base image, not by luck
from a transitive dependency. Also checks the entrypoint picks each binary by its first argument.

usage: image_deps_test.py <build-dir>"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ("mockarty", "mockarty-resolver", "mockarty-runner", "mockarty-operator")
# In debian:12-slim already (priority required); the image never installs them.
BASE = {"libc6", "libgcc-s1", "zlib1g", "libzstd1", "liblzma5", "libselinux1", "libpcre2-8-0",
        "libcrypt1", "libacl1", "libattr1", "libbz2-1.0", "libtinfo6", "libudev1", "libcap2",
        "libgmp10", "libmd0", "libsystemd0", "liblz4-1", "libgcrypt20", "libgpg-error0"}
# Sanitizer runtimes appear in the test build only; the image is built without -fsanitize.
SANITIZER = re.compile(r"^lib(asan|ubsan|lsan|tsan)\.so")
BUILD_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")


def runtime_packages():
    """The packages `apt-get install` names in the Dockerfile's last stage."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read().replace("\\\n", " ")
    stage = re.split(r"(?m)^FROM\s", text)[-1]
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&;\n]*)", stage):
        pkgs |= {t for t in m.group(1).split() if not t.startswith("-")}
    return pkgs


def depends_closure(pkgs):
    """pkgs and everything they depend on (Depends and Pre-Depends, recursively)."""
    out = subprocess.run(
        ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
         "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"] + sorted(pkgs),
        capture_output=True, text=True, check=True).stdout
    closure = set(pkgs)
    for line in out.splitlines():
        m = re.match(r"\s*\|?(?:Pre)?Depends: <?([^>\s:]+)", line)
        if m:
            closure.add(m.group(1))
        elif line and not line[0].isspace():
            closure.add(line.strip().strip("<>").split(":")[0])
    return closure


def find_binaries(build_dir):
    found = {}
    for dirpath, _, files in os.walk(build_dir):
        for fn in files:
            p = os.path.join(dirpath, fn)
            if fn in BINARIES and fn not in found and os.access(p, os.X_OK):
                found[fn] = p
    return found


def ldd(path):
    """{soname: resolved path} of every library the dynamic loader would map."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
        elif "not found" in line:
            raise AssertionError(f"{path}: {line.strip()}")
    return libs


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _candidates(libpath):
    real = os.path.realpath(libpath)
    out = []
    for p in (libpath, real):
        out += [p, p[4:] if p.startswith("/usr/") else "/usr" + p]
    return out


_OWNERS = {}


def owners(libpaths):
    """Fills the path -> package cache for libpaths with one dpkg -S (one call per library took
    a minute and a half: dpkg reads its whole file list each time)."""
    todo = sorted({c for lp in libpaths for c in _candidates(lp)} - set(_OWNERS))
    if not todo:
        return
    # dpkg -S exits 1 when some path has no package but still prints the others.
    out = subprocess.run(["dpkg", "-S"] + todo, capture_output=True, text=True).stdout
    for line in out.splitlines():
        pkgs, _, path = line.partition(": ")
        if path in todo:
            _OWNERS[path] = pkgs.split(",")[0].split(":")[0].strip()
    for c in todo:
        _OWNERS.setdefault(c, None)


def owner(libpath):
    """The package that ships libpath; tries the /usr-merged and the classic spelling."""
    owners([libpath])
    for c in _candidates(libpath):
        if _OWNERS.get(c):
            return _OWNERS[c]
    raise AssertionError(f"no Debian package ships {libpath}")


class ImageDepsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.listed = runtime_packages()
        cls.closure = depends_closure(cls.listed)
        cls.binaries = find_binaries(BUILD_DIR)

    def test_runtime_stage_lists_libraries(self):
        for pkg in ("libh2o-evloop0.13", "libjansson4", "libpq5", "libssl3", "libcurl4"):
            self.assertIn(pkg, self.listed)
        self.assertFalse({p for p in self.listed if p.endswith("-dev")}, "no -dev in runtime")
        with open(os.path.join(ROOT, "Dockerfile")) as f:
            text = f.read()
        runtime = re.split(r"(?m)^FROM\s", text)[-1]
        self.assertTrue(runtime.startswith("debian:12-slim"))
        self.assertRegex(runtime, r"(?m)^USER 10001")
        for b in BINARIES:
            self.assertIn(b, text)

    def test_every_library_comes_from_an_installed_package(self):
        self.assertTrue(self.binaries, f"no binary of {BINARIES} built under {BUILD_DIR}")
        print(f"\nchecking {sorted(self.binaries)}", file=sys.stderr)
        all_libs = {name: ldd(path) for name, path in self.binaries.items()}
        owners([lp for libs in all_libs.values() for lp in libs.values()])
        for name, path in sorted(self.binaries.items()):
            libs = all_libs[name]
            direct = set(needed(path))
            sanitized = any(SANITIZER.match(s) for s in libs)
            for soname, libpath in libs.items():
                if SANITIZER.match(soname):
                    continue
                # The ASan runtime pulls in libstdc++; a binary of ours never does by itself.
                if sanitized and soname.startswith("libstdc++") and soname not in direct:
                    continue
                pkg = owner(libpath)
                with self.subTest(binary=name, lib=soname, package=pkg):
                    if soname in direct:
                        self.assertIn(pkg, self.listed | BASE,
                                      f"{name} links {soname} from {pkg}: add {pkg} to the "
                                      "runtime stage of the Dockerfile")
                    else:
                        self.assertIn(pkg, self.closure | BASE)

    def test_entrypoint_picks_binary(self):
        with tempfile.TemporaryDirectory() as d:
            for b in BINARIES:
                with open(os.path.join(d, b), "w") as f:
                    f.write(f'#!/bin/sh\necho "{b} $*"\n')
                os.chmod(os.path.join(d, b), 0o755)
            env = dict(os.environ, MK_BIN_DIR=d)
            script = os.path.join(ROOT, "packaging", "docker-entrypoint.sh")
            cases = [([], "mockarty "), (["mockarty", "--config", "x"], "mockarty --config x"),
                     (["resolver"], "mockarty-resolver "),
                     (["mockarty-runner", "-v"], "mockarty-runner -v"),
                     (["operator"], "mockarty-operator "), (["--help"], "mockarty --help"),
                     (["echo", "hi"], "hi")]
            for args, want in cases:
                out = subprocess.run([script] + args, env=env, capture_output=True, text=True,
                                     check=True).stdout
                self.assertEqual(out.rstrip(), want.rstrip(), args)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=1)
