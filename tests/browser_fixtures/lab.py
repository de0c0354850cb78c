"""A throwaway JupyterLab on loopback and Debian Chromium driven by Playwright, for the browser tests.

``jupyter_lab(root)`` starts ``python -m jupyterlab`` with every Jupyter directory under ``root`` (no user
config, no news, no update checks) and yields its base URL and token; ``launch_chromium(pw, *args)`` starts the
system Chromium (``/usr/bin/chromium``, never a downloaded browser); ``open_notebook(page, url)`` waits for the
kernel and runs every cell.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)  # polling a server that is starting, not ordering events
    raise TimeoutError(f"jupyter lab did not answer {url} in {timeout} s:\n{log_path.read_text()[-3000:]}")


@contextlib.contextmanager
def jupyter_lab(root: Path, *, env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """JupyterLab serving ``root / "nb"`` (write notebooks there); yields ``{"base", "token", "work", "log"}``."""
    work = root / "nb"
    work.mkdir(exist_ok=True)
    token = secrets.token_hex(16)
    port = free_port()
    full_env = dict(os.environ, **(env or {}))
    for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_CONFIG_DIR", "config"),
                     ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        (root / sub).mkdir(exist_ok=True)
        full_env[var] = str(root / sub)
    full_env["JUPYTER_PLATFORM_DIRS"] = "1"
    # no "get Jupyter news?" toast over the screenshots
    notif = root / "settings" / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True, exist_ok=True)
    (notif / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    server_log = root / "server.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={root / 'settings'}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with server_log.open("w") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=work)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", proc, server_log)
        yield {"base": f"http://127.0.0.1:{port}", "token": token, "work": work, "log": server_log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def notebook_url(lab: dict[str, Any], name: str) -> str:
    return f"{lab['base']}/lab/tree/{name}?reset&token={lab['token']}"


def launch_chromium(pw: Any, *extra_args: str) -> Any:
    """Headless Debian Chromium (``executable_path``: Playwright downloads no browser)."""
    return pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*BASE_ARGS, *extra_args])


KERNEL_IDLE = ("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
               "&& window.jupyterapp.shell.currentWidget.sessionContext "
               "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
               "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel "
               "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'")


def open_notebook(page: Any, url: str, *, run_all: bool = True) -> None:
    """Open a notebook, wait for its kernel, and run every cell."""
    page.goto(url)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    if run_all:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
