#!/usr/bin/env python3
"""The package: `pip install bindings/python` into a fresh venv, then the
installed module, imported from outside the source tree, finds the library.

Needs python3 with venv and pip (Debian: python3-venv), and no network: the
install runs with --no-index, and the build backend (bindings/python/
_virevent_build.py) is standard library only, so --no-build-isolation needs
no setuptools or wheel in the venv. tests/python.rs skips this test when
ensurepip is missing, and sets VIREVENT_LIB to the library `cargo test` built.

    VIREVENT_LIB=target/debug/deps/libvirevent.so python3 tests/python/test_package.py -v
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    os.pardir, os.pardir))
PACKAGE = os.path.join(ROOT, "bindings", "python")
LIBRARY = os.environ.get("VIREVENT_LIB")

# Run by the venv's python with the working directory outside the source tree:
# prints where the module and the library came from, after an emit and a
# delivery.
SMOKE = """
import ctypes.util, importlib.metadata, virevent
with virevent.Connection() as conn:
    events = []
    conn.add_handler("smoke", events.append)
    assert conn.emit('<event type="smoke"/>') == 1
    assert conn.deliver() == 1, events
    assert events[0].startswith('<event type="smoke" '), events
print(virevent.__file__)
print(virevent.LIBRARY)
print(importlib.metadata.version("virevent"), virevent.__version__)
print(ctypes.util.find_library("virevent"))
"""


@unittest.skipUnless(LIBRARY, "VIREVENT_LIB is not set")
class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="virevent-package-")
        cls.venv = os.path.join(cls.tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", cls.venv], check=True,
                       capture_output=True)
        cls.python = os.path.join(cls.venv, "bin", "python")
        result = subprocess.run(
            [os.path.join(cls.venv, "bin", "pip"), "install", "--no-deps", "--no-build-isolation",
             "--no-index", "--disable-pip-version-check", "--no-cache-dir", PACKAGE],
            capture_output=True, text=True, cwd=cls.tmp)
        if result.returncode != 0:
            shutil.rmtree(cls.tmp)
            raise AssertionError(f"pip install failed:\n{result.stdout}{result.stderr}")
        cls.module = subprocess.run(
            [cls.python, "-c", "import importlib.util; "
             "print(importlib.util.find_spec('virevent').origin)"],
            env=cls.env(VIREVENT_LIB=LIBRARY), cwd=cls.tmp, capture_output=True, text=True,
            check=True).stdout.strip()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    @classmethod
    def env(cls, **extra):
        """The environment without what would find the library or the source tree:
        no VIREVENT_LIB, no LD_LIBRARY_PATH (cargo's names the build), no PYTHONPATH."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("VIREVENT_LIB", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME")}
        env.update(extra)
        return env

    def run_smoke(self, **env):
        result = subprocess.run([self.python, "-c", SMOKE], env=self.env(**env), cwd=self.tmp,
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        module, library, versions, found = result.stdout.splitlines()
        return module, library, versions, found

    def set_install_libdir(self, value):
        """Rewrites the installed copy's INSTALL_LIBDIR line, as `make install` does."""
        with open(self.module, encoding="utf-8") as f:
            lines = f.read().split("\n")
        index = [i for i, line in enumerate(lines) if line.startswith("INSTALL_LIBDIR = ")]
        self.assertEqual(len(index), 1, "one INSTALL_LIBDIR line")
        lines[index[0]] = f"INSTALL_LIBDIR = {value}"
        with open(self.module, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))

    def test_installed_outside_the_source_tree(self):
        self.assertTrue(self.module.startswith(self.venv + os.sep), self.module)
        self.assertFalse(self.module.startswith(ROOT + os.sep), self.module)
        with open(self.module, encoding="utf-8") as f:
            self.assertIn("\nINSTALL_LIBDIR = None\n", f.read())

    def test_with_virevent_lib(self):
        module, library, versions, _ = self.run_smoke(VIREVENT_LIB=LIBRARY)
        self.assertEqual(module, self.module)
        self.assertEqual(library, LIBRARY)
        installed, module_version = versions.split()
        self.assertEqual(installed, module_version, "the package's version is the module's")

    def test_with_install_libdir(self):
        # The layout `make install` leaves: PREFIX/lib/libvirevent.so.0, the
        # soname link, here to the library this build made.
        libdir = os.path.join(self.tmp, "prefix", "lib")
        os.makedirs(libdir, exist_ok=True)
        link = os.path.join(libdir, "libvirevent.so.0")
        if not os.path.lexists(link):
            os.symlink(os.path.realpath(LIBRARY), link)
        self.set_install_libdir(f'"{libdir}"')
        try:
            module, library, _, found = self.run_smoke()
        finally:
            self.set_install_libdir("None")
        self.assertEqual(module, self.module)
        if found != "None":
            # Installed where the dynamic loader looks: that comes first.
            self.assertEqual(library, found)
            print(f"\nnote: find_library finds {found} on this machine, before INSTALL_LIBDIR",
                  file=sys.stderr)
        else:
            self.assertEqual(library, link)

    def test_error_names_the_three_places(self):
        result = subprocess.run([self.python, "-c", "import virevent"], env=self.env(),
                                cwd=self.tmp, capture_output=True, text=True)
        found = subprocess.run([self.python, "-c", "import ctypes.util; "
                                "print(ctypes.util.find_library('virevent'))"],
                               env=self.env(), capture_output=True, text=True).stdout.strip()
        if found != "None":
            self.skipTest(f"find_library finds {found} on this machine")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImportError", result.stderr)
        for place in ("VIREVENT_LIB", "find_library", "INSTALL_LIBDIR"):
            self.assertIn(place, result.stderr)

        # A VIREVENT_LIB that does not load is an error, not a fallback.
        bogus = os.path.join(self.tmp, "no-such-libvirevent.so")
        result = subprocess.run([self.python, "-c", "import virevent"],
                                env=self.env(VIREVENT_LIB=bogus), cwd=self.tmp,
                                capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"VIREVENT_LIB={bogus}", result.stderr)


if __name__ == "__main__":
    unittest.main()
