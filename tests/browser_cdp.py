"""A headless system Chromium driven over the DevTools protocol (CDP), for the browser test.

Only the few commands the test needs: open a page from disk, wait until it settled
(load event, images decoded, MathJax typeset), evaluate JavaScript, take a full-page
screenshot, and list every request that tried to leave the machine. No browser is
downloaded: :func:`find_chromium` looks for the Debian package's binary.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

#: Flags for headless Chromium run as root in a container (no sandbox, no GPU, small /dev/shm).
FLAGS = ("--headless=new", "--no-sandbox", "--no-zygote", "--single-process", "--disable-gpu",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio",
         # Offline: every host name fails to resolve, and a proxy that does not exist takes
         # whatever else goes to the network; file:// pages are not affected.
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:", "chrome-extension:")


def find_chromium() -> str | None:
    """Path of the system Chromium (``CHROMIUM`` overrides), or None."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


class Browser:
    """One headless Chromium with one page, at ``width`` x ``height`` CSS pixels.

    Parameters
    ----------
    executable : str
        The Chromium binary.
    width, height : int, keyword-only
        The viewport in CSS pixels (device scale factor 1).
    timeout : float, keyword-only
        Seconds to wait for any one reply or page load.
    """

    def __init__(self, executable: str, *, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        import websocket  # websocket-client: the dev extra

        self.timeout = timeout
        self.width, self.height = width, height
        self._home = tempfile.mkdtemp(prefix="chromium-home-")
        profile = Path(self._home) / "profile"
        env = dict(os.environ, HOME=self._home)
        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._wait_for_port(profile / "DevToolsActivePort")
        targets = self._wait_for_page(port)
        self._socket = websocket.create_connection(targets["webSocketDebuggerUrl"], timeout=timeout,
                                                   suppress_origin=True)
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def _wait_for_port(self, port_file: Path) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self._process.returncode} before it listened")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:  # the port, then the browser's path: the file is complete
                return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"Chromium wrote no {port_file.name} within {self.timeout:.0f} s")

    def _wait_for_page(self, port: int) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                    pages = [t for t in json.load(reply) if t.get("type") == "page"]
                if pages:
                    return pages[0]
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Chromium's DevTools on port {port} listed no page within {self.timeout:.0f} s")

    def send(self, method: str, **params) -> dict:
        """Send one CDP command and return its result; events that arrive meanwhile are kept."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self._socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        raise TimeoutError(f"no reply to {method} within {self.timeout:.0f} s")

    def _wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self._socket.recv()))
        raise TimeoutError(f"no {method} within {self.timeout:.0f} s")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (a promise is awaited), as JSON."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=self.timeout * 1000)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"JavaScript failed: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event, its images and MathJax's typesetting."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        self.evaluate("""(async () => {
            for (const img of document.images) { img.loading = 'eager'; }
            await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
            await document.fonts.ready;
            return true;
        })()""")

    def remote_requests(self) -> list[str]:
        """URLs the current page asked for that are not on this machine (file, data, ...)."""
        urls = [event["params"]["request"]["url"] for event in self.events
                if event.get("method") == "Network.requestWillBeSent"]
        return [url for url in urls if not url.startswith(LOCAL_SCHEMES)]

    def screenshot(self, path: Path, *, max_height: int = 12000) -> Path:
        """A PNG of the whole page (up to ``max_height`` px tall) at the viewport's width.

        The viewport is made as tall as the page for the capture, then restored: Chromium's
        ``captureBeyondViewport`` can lay a page out anew at another width after earlier
        captures, which shifted the book's columns off the picture.
        """
        height = min(max(int(self.evaluate("document.documentElement.scrollHeight")), self.height), max_height)
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=height, deviceScaleFactor=1,
                  mobile=False)
        try:
            self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            data = self.send("Page.captureScreenshot", format="png")["data"]
        finally:
            self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop this Chromium (only the process this object started) and remove its profile."""
        try:
            self._socket.close()
        finally:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
