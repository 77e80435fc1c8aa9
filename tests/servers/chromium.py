"""A headless Chromium for tests, and a small Chrome DevTools Protocol driver to steer it.

Tests of pages Meshline serves want a real browser (scripts run, requests made, pixels drawn)
without Selenium, Playwright or a browser download from Google: the machine has the repository
and Debian's package registry, nothing else.

:func:`chromium_binary` uses ``chromium`` from ``PATH`` when there is one. Otherwise, with no
system install, it fetches Debian's ``chromium`` and ``chromium-common`` plus every package of
their dependency closure that this machine lacks, with ``apt-get download`` into
``~/.cache/meshline/chromium/apt/``, unpacks them with ``dpkg-deb -x`` into
``~/.cache/meshline/chromium/root/`` and returns ``usr/lib/chromium/chromium`` with an
``LD_LIBRARY_PATH`` covering the unpacked libraries. Both directories are reused by later runs;
when apt's package lists are empty, ``apt-get update`` runs first (as root).

The closure comes from apt's own resolver (``apt-get -s install --no-install-recommends``), not
from ``apt-cache depends --recurse``: the latter follows every alternative of an or-group, and
chromium's ``libgtk-3-0 | xdg-desktop-portal-backend`` alone drags in the GNOME and KDE portals
(463 packages against apt's 239 on an empty system). The simulation lists exactly the packages
missing here (what ``dpkg-query`` reports as not installed, or too old).

Knobs: ``MESHLINE_CHROMIUM_BINARY`` names a browser to use as it is; ``MESHLINE_CHROMIUM_DOWNLOAD=1``
ignores ``PATH`` (to exercise the download on a machine that has chromium);
``MESHLINE_CHROMIUM_BARE=1`` also resolves as if nothing at all were installed (the whole
closure, ≈ 233 MB, into ``root-bare/``), which shows the unpacked tree alone is enough.

:class:`Browser` starts it headless on 127.0.0.1 with a throw-away profile; :meth:`Browser.open`
gives a :class:`Page` with ``evaluate``, ``wait_for``, ``screenshot``, ``requests`` and
``console_errors``. It speaks CDP over the ``websockets`` sync client, one connection per page.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.harness import one_at_a_time, serving

CACHE = Path(os.environ.get("MESHLINE_CACHE") or Path.home() / ".cache" / "meshline") / "chromium"
BINARY = "usr/lib/chromium/chromium"
PACKAGES = ("chromium", "chromium-common")
_LIB_DIRS = ("usr/lib/chromium", "usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib", "lib")
_READY = ".meshline-ready"
_FONTS_CONF = "etc/fonts/meshline-fonts.conf"

__all__ = ["Browser", "CDPError", "Page", "chromium_binary"]


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


# --- provisioning -----------------------------------------------------------------------------


def chromium_binary() -> tuple[Path, dict[str, str]]:
    """A Chromium binary and the environment it needs on top of ``os.environ``.

    ``chromium`` on ``PATH`` comes with no extra environment; an unpacked one (see the module
    docstring) with ``LD_LIBRARY_PATH`` (and ``FONTCONFIG_FILE`` when fontconfig's own
    configuration had to be unpacked too).
    """
    explicit = os.environ.get("MESHLINE_CHROMIUM_BINARY")
    if explicit:
        return Path(explicit), {}
    if not _flag("MESHLINE_CHROMIUM_DOWNLOAD") and not _flag("MESHLINE_CHROMIUM_BARE"):
        found = shutil.which("chromium")
        if found:
            return Path(found), {}
    root = _provision(bare=_flag("MESHLINE_CHROMIUM_BARE"))
    return root / BINARY, _environment(root)


def _apt_knows(name: str) -> bool:
    return _run(["apt-cache", "show", "--no-all-versions", name]).returncode == 0


def _missing(bare: bool) -> list[str]:
    """chromium, chromium-common and what apt would install with them here (or on an empty
    system when ``bare``), recommends left out: the packages to download."""
    cmd = ["apt-get", "-s", "-qq", "-o", "Debug::NoLocking=1", "install", "--no-install-recommends"]
    with tempfile.NamedTemporaryFile(prefix="meshline-dpkg-status-") as empty:
        if bare:
            cmd[2:2] = ["-o", f"Dir::State::status={empty.name}"]
        r = _run([*cmd, *PACKAGES])
    if r.returncode != 0:
        raise RuntimeError(f"apt-get -s install chromium failed: {(r.stderr or r.stdout).strip()[-2000:]}")
    names = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("Inst ")}
    return sorted(names | set(PACKAGES))


def _debs(apt_dir: Path, names: list[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in names:
        versions = sorted(apt_dir.glob(f"{name}_*.deb"))  # package names have no "_"
        if versions:
            found[name] = versions[-1]
    return found


def _download(apt_dir: Path, bare: bool) -> dict[str, Path]:
    apt_dir.mkdir(parents=True, exist_ok=True)
    if not _apt_knows("chromium") and os.geteuid() == 0:
        _run(["apt-get", "update", "-qq"])  # a fresh machine may have no package lists yet
    if not _apt_knows("chromium"):
        raise RuntimeError(
            "apt knows no chromium package: run 'apt-get update' (as root) or set MESHLINE_CHROMIUM_BINARY"
        )
    names = _missing(bare)
    todo = [n for n in names if n not in _debs(apt_dir, [n])]
    if todo:
        r = _run(["apt-get", "download", *todo], cwd=apt_dir)
        if r.returncode != 0:
            raise RuntimeError(f"apt-get download failed: {r.stderr.strip()[-2000:]}")
    debs = _debs(apt_dir, names)
    lacking = sorted(set(names) - set(debs))
    if lacking:
        raise RuntimeError(f"apt-get download left out {lacking}")
    return debs


def _lib_dirs(root: Path) -> list[Path]:
    """The unpacked directories holding shared libraries, chromium's own first; subdirectories
    too (``pulseaudio/`` holds libpulsecommon, found through an absolute RUNPATH otherwise)."""
    dirs: list[Path] = []
    for rel in _LIB_DIRS:
        top = root / rel
        if not top.is_dir():
            continue
        for d in [top, *sorted(p for p in top.iterdir() if p.is_dir() and not p.is_symlink())]:
            if d not in dirs and (d == top or any(d.glob("lib*.so*"))):
                dirs.append(d)
    return dirs


def _environment(root: Path) -> dict[str, str]:
    paths = [str(d) for d in _lib_dirs(root)]
    if os.environ.get("LD_LIBRARY_PATH"):
        paths.append(os.environ["LD_LIBRARY_PATH"])
    env = {"LD_LIBRARY_PATH": ":".join(paths)}
    if (root / _FONTS_CONF).exists():
        env["FONTCONFIG_FILE"] = str(root / _FONTS_CONF)
    return env


def _write_fonts_conf(staging: Path, final: Path) -> None:
    """fontconfig reads /etc/fonts/fonts.conf, compiled in; when fontconfig-config had to be
    unpacked, that file is missing here, so point fontconfig at the unpacked fonts (and the
    system's, if any) through ``FONTCONFIG_FILE``."""
    if not (staging / "etc/fonts/fonts.conf").exists():
        return
    (staging / _FONTS_CONF).write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n<fontconfig>\n'
        f"  <dir>{final}/usr/share/fonts</dir>\n  <dir>/usr/share/fonts</dir>\n"
        f"  <cachedir>{final}/var/cache/fontconfig</cachedir>\n</fontconfig>\n"
    )


@one_at_a_time("chromium")
def _provision(bare: bool = False) -> Path:
    """The unpacked tree (``.../root``), downloading and unpacking it the first time.

    Runs in one process at a time (pytest-xdist workers may ask at once): the others wait, then
    find the ready marker. The tree is built in a staging directory and renamed into place, so
    a killed run leaves nothing that looks finished.
    """
    root = CACHE / ("root-bare" if bare else "root")
    if (root / _READY).exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = _download(CACHE / "apt", bare)
    staging = Path(tempfile.mkdtemp(prefix="root-", dir=CACHE))
    try:
        for deb in debs.values():
            r = _run(["dpkg-deb", "-x", str(deb), str(staging)])
            if r.returncode != 0:
                raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()}")
        _write_fonts_conf(staging, root)
        _check_libraries(staging)
        (staging / _READY).write_text("\n".join(sorted(debs)) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)
    return root


def _check_libraries(root: Path) -> None:
    """Fail now, with the names, if the unpacked binary would not find a library."""
    env = {**os.environ, "LD_LIBRARY_PATH": _environment(root)["LD_LIBRARY_PATH"]}
    r = _run(["ldd", str(root / BINARY)], env=env)
    missing = [line.strip() for line in r.stdout.splitlines() if "not found" in line]
    if r.returncode != 0 or missing:
        raise RuntimeError(f"unpacked chromium lacks libraries: {missing or r.stderr.strip()}")


# --- the DevTools driver ----------------------------------------------------------------------


class CDPError(RuntimeError):
    """A DevTools command failed, or a page's script threw."""


class _Connection:
    """One DevTools websocket: commands wait for their reply; events meanwhile are kept in order."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        from websockets.sync.client import connect

        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        # no proxy (websockets reads *_proxy from the environment), no size cap (screenshots),
        # no queue cap (events must not stall the browser while nobody reads)
        self._ws = connect(
            url, open_timeout=timeout, max_size=None, max_queue=None, compression=None, proxy=None
        )

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = self._receive(deadline - time.monotonic(), f"{method} got no answer in {timeout}s")
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error'].get('message')} {msg['error'].get('data', '')}")
                result: dict[str, Any] = msg.get("result", {})
                return result

    def wait_event(self, method: str, since: int, timeout: float) -> dict[str, Any]:
        """The first ``method`` event at or after index ``since`` of :attr:`events`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[since:]:
                if event.get("method") == method:
                    return event
            since = len(self.events)
            self._receive(deadline - time.monotonic(), f"no {method} in {timeout}s")

    def drain(self) -> None:
        """Take in the events that have arrived so far."""
        while True:
            try:
                self._receive(0, "")
            except TimeoutError:
                return

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            msg: dict[str, Any] = json.loads(self._ws.recv(timeout=max(timeout, 0)))
        except TimeoutError:
            raise TimeoutError(what) from None
        if "method" in msg and "id" not in msg:
            self.events.append(msg)
        return msg

    def close(self) -> None:
        self._ws.close()


def _remote_text(obj: dict[str, Any]) -> str:
    if "value" in obj:
        return obj["value"] if isinstance(obj["value"], str) else json.dumps(obj["value"])
    return str(obj.get("description") or obj.get("unserializableValue") or obj.get("type", ""))


class Page:
    """One tab, on its own DevTools connection; made by :meth:`Browser.open`.

    Network, Runtime, Log and Page events are enabled before the first navigation, so
    :meth:`requests` and :meth:`console_errors` see everything from the document on.
    """

    def __init__(self, browser: Browser, target_id: str, ws_url: str) -> None:
        self.target_id = target_id
        self._browser = browser
        self._conn = _Connection(ws_url)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self._conn.call(f"{domain}.enable")

    def goto(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the load event (scripts' timers may still be pending)."""
        mark = len(self._conn.events)
        result = self._conn.call("Page.navigate", {"url": url}, timeout)
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")
        self._conn.wait_event("Page.loadEventFired", mark, timeout)

    def evaluate(self, expression: str, timeout: float = 30) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON-able Python.

        Raises :class:`CDPError` with the script's message when it throws.
        """
        result = self._conn.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(_remote_text(details.get("exception", {})) or details.get("text", "error"))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20, interval: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy and return that value. A throw counts as not
        yet (the element may not exist yet); the last one is in the TimeoutError."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = self.evaluate(expression, timeout=max(deadline - time.monotonic(), 1))
                if value:
                    return value
                last = value
            except CDPError as e:
                last = e
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} not truthy in {timeout}s (last: {last!r})")
            time.sleep(interval)

    def screenshot(self, path: Path | str, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page) written to ``path``; returns the path."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self._conn.call("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params |= {"captureBeyondViewport": True, "clip": clip}
        data = self._conn.call("Page.captureScreenshot", params, timeout=60)["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def requests(self) -> list[str]:
        """The URL of every request the page made so far, document first, in order (the
        browser's own ``/favicon.ico`` fetch included)."""
        self._conn.drain()
        return [
            e["params"]["request"]["url"]
            for e in self._conn.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, ``console.error`` calls and the browser's own error entries
        (a failed load, a blocked request) so far."""
        self._conn.drain()
        errors: list[str] = []
        for e in self._conn.events:
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                details = p.get("exceptionDetails", {})
                errors.append(_remote_text(details.get("exception", {})) or details.get("text", ""))
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(_remote_text(a) for a in p.get("args", [])))
            elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                errors.append(
                    f"{entry.get('text', '')} ({entry['url']})" if entry.get("url") else entry["text"]
                )
        return errors

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Any other DevTools command on this page, e.g. ``Emulation.setDeviceMetricsOverride``."""
        return self._conn.call(method, params)

    def close(self) -> None:
        self._conn.close()
        try:
            self._browser.call("Target.closeTarget", {"targetId": self.target_id})
        except Exception:
            pass  # the browser may be on its way out

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


class Browser:
    """Headless Chromium on 127.0.0.1 with a throw-away profile, as a context manager.

    The process runs in its own process group (:func:`tests.harness.serving`): leaving the block
    sends the group SIGTERM, then SIGKILL, so renderer, GPU and zygote processes go too, and it
    dies with the test process even if that is killed. Its output goes to :attr:`log`.
    """

    FLAGS = (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MB
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",  # no calls home from an offline machine
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
    )

    def __init__(
        self, extra_args: Sequence[str] = (), timeout: float = 60, window_size: tuple[int, int] = (1400, 1000)
    ) -> None:
        self.extra_args = list(extra_args)
        self.window_size = window_size
        self.timeout = timeout
        self.ws_url = ""
        self.log = Path()
        self._stack = ExitStack()
        self._conn: _Connection | None = None
        self._pages: list[Page] = []

    def __enter__(self) -> Browser:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        binary, extra_env = chromium_binary()
        tmp = Path(
            self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix="meshline-chromium-", ignore_cleanup_errors=True)
            )
        )
        self.log = tmp / "chromium.log"
        cmd = [
            str(binary),
            *self.FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            f"--window-size={self.window_size[0]},{self.window_size[1]}",
            *self.extra_args,
            "about:blank",
        ]
        self._stack.enter_context(
            serving(
                cmd,
                ready=lambda: self._devtools_url() is not None,
                log=self.log,
                what="chromium",
                timeout=self.timeout,
                stop_timeout=10,
                env={**os.environ, **extra_env},
                cwd=tmp,
                stdin=subprocess.DEVNULL,
            )
        )
        self.ws_url = self._devtools_url() or ""
        self._conn = _Connection(self.ws_url)
        self._stack.callback(self._close_connections)

    def _devtools_url(self) -> str | None:
        m = _LISTENING.search(self.log.read_text(errors="replace")) if self.log.exists() else None
        return m.group(1) if m else None

    @property
    def port(self) -> int:
        """The DevTools HTTP/websocket port (``/json/version`` answers there)."""
        return int(self.ws_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A browser-level DevTools command (``Target.*``, ``Browser.getVersion``, ...)."""
        if self._conn is None:
            raise RuntimeError("the browser is not running (use it as a context manager)")
        return self._conn.call(method, params)

    def open(self, url: str, timeout: float = 30) -> Page:
        """A new tab showing ``url`` once its load event fired; closed with the browser.

        Its viewport is exactly :attr:`window_size` (new headless keeps some of the window for
        its invisible frame: 1400x1000 gave a 1400x913 viewport).
        """
        width, height = self.window_size
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        page = Page(self, target, f"ws://127.0.0.1:{self.port}/devtools/page/{target}")
        self._pages.append(page)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        page.call("Emulation.setDeviceMetricsOverride", metrics)
        page.goto(url, timeout)
        return page

    def _close_connections(self) -> None:
        for page in self._pages:
            try:
                page._conn.close()
            except Exception:
                pass
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()
