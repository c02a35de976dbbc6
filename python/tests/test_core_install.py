"""pip install ./python works offline (the in-tree build backend), and the wheel is correct."""

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile

from conftest import PYTHON_DIR

sys.path.insert(0, str(PYTHON_DIR))
import _build_backend  # noqa: E402


def offline_env(tmp_path):
    env = dict(os.environ)
    for key in list(env):
        if key.startswith("PIP_") or key in ("PYTHONPATH", "VIRTUAL_ENV"):
            del env[key]
    env.update({
        "PIP_NO_INDEX": "1",  # nothing from any index: the build must need nothing
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "HOME": str(tmp_path),
    })
    return env


def test_pip_install_offline_into_a_venv(tmp_path, ipcbusd):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = offline_env(tmp_path)
    r = subprocess.run([python, "-m", "pip", "install", str(PYTHON_DIR)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env["IPCBUS_ADDRESS"] = ipcbusd.address
    code = ("import ipcbus, os, sys; assert os.path.dirname(ipcbus.__file__).startswith(sys.prefix), ipcbus.__file__;"
            "b = ipcbus.connect(); print(ipcbus.__version__, b.unique_name.startswith(':'))")
    r = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0.1.0", "True"]
    r = subprocess.run([python, "-m", "pip", "show", "ipcbus"], env=env, capture_output=True, text=True, timeout=60)
    assert "Version: 0.1.0" in r.stdout


def test_wheel_record_and_metadata(tmp_path):
    name = _build_backend.build_wheel(str(tmp_path))
    assert name == "ipcbus-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(str(tmp_path / name)) as z:
        names = z.namelist()
        assert "ipcbus/__init__.py" in names and "ipcbus/connection.py" in names
        assert not any("__pycache__" in n or "tests/" in n for n in names)
        record = list(csv.reader(io.StringIO(z.read("ipcbus-0.1.0.dist-info/RECORD").decode())))
        listed = {row[0] for row in record}
        assert listed == set(names)
        for path, digest, size in record:
            if path.endswith("RECORD"):
                assert digest == "" and size == ""
                continue
            data = z.read(path)
            want = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == "sha256=" + want and int(size) == len(data), path
        meta = z.read("ipcbus-0.1.0.dist-info/METADATA").decode()
        assert "Name: ipcbus\n" in meta and "Version: 0.1.0\n" in meta and "Requires-Python: >=3.9" in meta
        assert "Root-Is-Purelib: true" in z.read("ipcbus-0.1.0.dist-info/WHEEL").decode()


def test_sdist_and_hooks(tmp_path):
    assert _build_backend.get_requires_for_build_wheel() == []
    assert _build_backend.get_requires_for_build_sdist() == []
    name = _build_backend.build_sdist(str(tmp_path))
    import tarfile
    with tarfile.open(str(tmp_path / name)) as t:
        members = t.getnames()
    assert "ipcbus-0.1.0/pyproject.toml" in members and "ipcbus-0.1.0/ipcbus/message.py" in members
    assert "ipcbus-0.1.0/PKG-INFO" in members
    dist_info = _build_backend.prepare_metadata_for_build_wheel(str(tmp_path))
    assert (tmp_path / dist_info / "METADATA").read_text().startswith("Metadata-Version: 2.1\nName: ipcbus\n")


def test_metadata_without_tomllib(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tomllib(name, *a, **kw):
        if name == "tomllib":
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_tomllib)
    p = _build_backend._project()
    assert p["name"] == "ipcbus" and p["version"] == "0.1.0" and p["requires-python"] == ">=3.9"
    assert p["license"] == {"text": "MIT"} and "Framework :: AsyncIO" in p["classifiers"]
