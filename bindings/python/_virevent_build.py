"""The PEP 517 build backend of the virevent package (pyproject.toml names it).

Standard library only, so that `pip install bindings/python` needs nothing
from an index: no setuptools, no wheel. It builds the one pure-Python wheel
(virevent.py), an sdist, and an editable wheel (PEP 660: a .pth naming this
folder) for `pip install -e`. Name, version and summary are pyproject.toml's
[project] table. Not installed.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "virevent.py"


def _project():
    """The [project] table's plain string fields (this file's own pyproject.toml)."""
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    fields = dict(re.findall(r'^([\w-]+) = (?:\{text = )?"([^"]*)"', table, re.M))
    return fields


def _metadata():
    p = _project()
    return (f"Metadata-Version: 2.1\nName: {p['name']}\nVersion: {p['version']}\n"
            f"Summary: {p['description']}\nLicense: {p['license']}\n"
            f"Requires-Python: {p['requires-python']}\n")


def _dist(p=None):
    p = p or _project()
    return f"{p['name']}-{p['version']}"


def _wheel(wheel_directory, files):
    """Writes a py3-none-any wheel holding `files` ({name: bytes}) and its
    dist-info; returns its file name."""
    dist = _dist()
    info = f"{dist}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = _metadata().encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: _virevent_build\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}\n")
    record.append(f"{info}/RECORD,,\n")
    files[f"{info}/RECORD"] = "".join(record).encode()
    filename = f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return filename


def _read(name):
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {MODULE: _read(MODULE)})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, {"virevent.pth": (HERE + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    dist = _dist()
    filename = f"{dist}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz",
                      format=tarfile.PAX_FORMAT) as sdist:
        members = {"PKG-INFO": _metadata().encode()}
        for name in ("pyproject.toml", "_virevent_build.py", MODULE):
            members[name] = _read(name)
        for name, data in members.items():
            member = tarfile.TarInfo(f"{dist}/{name}")
            member.size = len(data)
            member.mode = 0o644
            sdist.addfile(member, io.BytesIO(data))
    return filename
