"""A small PEP 517 build backend for the ipcbus package, standard library
only, so that `pip install ./python` works without a network (pip's build
isolation would otherwise fetch setuptools).

It builds a pure-Python wheel of the package directory `ipcbus/` (every
.py and .json file in it), an sdist of the project, and an editable wheel
(a .pth file pointing at this directory). Metadata comes from
pyproject.toml's [project] table, read with tomllib where there is one
(3.11+) and with a minimal reader of the few keys used here otherwise.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "ipcbus"
WHEEL_TAG = "py3-none-any"
SDIST_FILES = ("pyproject.toml", "README.md", "_build_backend.py")
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # fixed, so that the same tree gives the same wheel


def _project():
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        data = f.read()
    try:
        import tomllib
        return tomllib.loads(data.decode("utf-8"))["project"]
    except ImportError:
        pass
    # The subset pyproject.toml uses: a [project] table of strings, string arrays and one inline table.
    project, section = {}, None
    text = data.decode("utf-8")
    for m in re.finditer(r'(?m)^\[(?P<sec>[^\]]+)\]\s*$|^(?P<key>[A-Za-z_-]+)\s*=\s*(?P<val>"[^"]*"|\{[^}]*\}|\[[^\]]*\])',
                         text):
        if m.group("sec"):
            section = m.group("sec").strip()
        elif section == "project":
            val = m.group("val")
            if val.startswith('"'):
                project[m.group("key")] = val[1:-1]
            elif val.startswith("["):
                project[m.group("key")] = re.findall(r'"([^"]*)"', val)
            else:
                project[m.group("key")] = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', val))
    return project


def _names():
    p = _project()
    return p, p["name"], p["version"]


def _metadata():
    p, name, version = _names()
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % name,
        "Version: %s" % version,
        "Summary: %s" % p.get("description", ""),
        "Requires-Python: %s" % p.get("requires-python", ">=3.9"),
    ]
    lic = p.get("license")
    if isinstance(lic, dict) and "text" in lic:
        lines.append("License: %s" % lic["text"])
    for c in p.get("classifiers", []):
        lines.append("Classifier: %s" % c)
    readme = p.get("readme")
    body = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(HERE, readme), encoding="utf-8") as f:
            body = f.read()
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def _dist_info(name, version):
    return "%s-%s.dist-info" % (name.replace("-", "_"), version)


def _wheel_text():
    return ("Wheel-Version: 1.0\nGenerator: ipcbus _build_backend\nRoot-Is-Purelib: true\nTag: %s\n"
            % WHEEL_TAG).encode("ascii")


def _package_files():
    out = []
    root = os.path.join(HERE, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith((".py", ".json")):
                full = os.path.join(dirpath, fn)
                out.append((os.path.relpath(full, HERE).replace(os.sep, "/"), full))
    return out


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(wheel_directory, contents):
    """contents: list of (arcname, bytes). Adds the dist-info files and RECORD."""
    _, name, version = _names()
    dist_info = _dist_info(name, version)
    contents = list(contents) + [
        (dist_info + "/METADATA", _metadata()),
        (dist_info + "/WHEEL", _wheel_text()),
    ]
    record = [_record_line(a, d) for a, d in contents] + [dist_info + "/RECORD,,"]
    contents.append((dist_info + "/RECORD", ("\n".join(record) + "\n").encode("utf-8")))
    filename = "%s-%s-%s.whl" % (name.replace("-", "_"), version, WHEEL_TAG)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in contents:
            info = zipfile.ZipInfo(arcname, _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return filename


# ---- the PEP 517 / PEP 660 hooks ----

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _, name, version = _names()
    dist_info = _dist_info(name, version)
    path = os.path.join(metadata_directory, dist_info)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "METADATA"), "wb") as f:
        f.write(_metadata())
    with open(os.path.join(path, "WHEEL"), "wb") as f:
        f.write(_wheel_text())
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    contents = []
    for arcname, full in _package_files():
        with open(full, "rb") as f:
            contents.append((arcname, f.read()))
    return _write_wheel(wheel_directory, contents)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _, name, _ = _names()
    pth = (HERE + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [("__editable__.%s.pth" % name.replace("-", "_"), pth)])


def build_sdist(sdist_directory, config_settings=None):
    _, name, version = _names()
    base = "%s-%s" % (name, version)
    filename = base + ".tar.gz"
    files = [(f, os.path.join(HERE, f)) for f in SDIST_FILES] + _package_files()
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for arcname, full in files:
            with open(full, "rb") as f:
                data = f.read()
            info = tarfile.TarInfo("%s/%s" % (base, arcname))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        pkg_info = _metadata()
        info = tarfile.TarInfo("%s/PKG-INFO" % base)
        info.size = len(pkg_info)
        info.mode = 0o644
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(pkg_info))
    return filename
