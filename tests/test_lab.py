"""``make lab``: JupyterLab starts headless (as root too), serves the notebooks and stops."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from kgwb import lab

pytest.importorskip("jupyterlab", reason="jupyterlab is in the 'lab' extra")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read().decode())


def test_allow_root_only_as_root(monkeypatch):
    monkeypatch.setattr(lab, "running_as_root", lambda: True)
    assert "--allow-root" in lab.lab_command()
    monkeypatch.setattr(lab, "running_as_root", lambda: False)
    assert "--allow-root" not in lab.lab_command()


@pytest.mark.slow
def test_lab_starts_headless_and_lists_the_notebooks(tmp_path):
    port, token = _free_port(), secrets.token_hex(8)
    cmd = lab.lab_command(port=port, ip="127.0.0.1", token=token)
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline, listing = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                listing = _get(f"{base}/api/contents/notebooks?token={token}")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert listing is not None, (tmp_path / "lab.log").read_text()[-2000:]
        names = {entry["name"] for entry in listing["content"]}
        for stem in ("01_explore", "02_build_kg", "03_train", "04_inspect"):
            assert f"{stem}.ipynb" in names
        # the token is required: without it the API answers 403
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{base}/api/contents/notebooks")
        specs = _get(f"{base}/api/kernelspecs?token={token}")
        assert "python3" in specs["kernelspecs"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
