"""A small WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/) for the playground's Firefox test.

Firefox speaks BiDi natively on the port given by `--remote-debugging-port`, so Debian's `firefox-esr`
needs no geckodriver (Debian has none) and no Playwright build of Firefox (which cannot be downloaded
here). This covers what the test needs: one session over one websocket, commands answered in order, events
handed to their handlers as they arrive, and Python values in and out of `script.callFunction`."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import _stop, free_port, reachable, wait_until

Json = dict[str, Any]
COMMAND_TIMEOUT_S = 60.0

# Written to the fresh profile's user.js. Firefox's remote agent applies its own recommended automation
# preferences too (background services pointed at nowhere among them); these are the ones this test relies
# on, stated here so that a change of those defaults does not change the test.
PREFERENCES: dict[str, bool | int | str] = {
    "remote.active-protocols": 1,  # WebDriver BiDi only
    # Like Chromium's --autoplay-policy=no-user-gesture-required: headless has no speakers to ask about.
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "signon.rememberSignons": False,  # no password-manager prompt after the API key is typed
}


class BiDiError(Exception):
    """A command's error answer; `error` is the spec's code (`no such element`, `invalid argument`, …)."""

    def __init__(self, method: str, error: str, message: str) -> None:
        super().__init__(f"{method}: {error}: {message}")
        self.error = error


class ScriptError(Exception):
    """The page's script threw."""


class Session:
    """One BiDi session. Commands are synchronous; events that arrive meanwhile go to their handlers."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._next_id = 0
        self._handlers: dict[str, list[Callable[[Json], None]]] = {}

    def command(self, method: str, params: Json | None = None, timeout_s: float = COMMAND_TIMEOUT_S) -> Json:
        self._next_id += 1
        sent = self._next_id
        self._socket.send(json.dumps({"id": sent, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout_s
        while (message := self._receive(deadline)) is None:
            pass
        if message.get("id") != sent:
            raise BiDiError(method, "unexpected message", json.dumps(message)[:500])
        if message["type"] == "error":
            raise BiDiError(method, message["error"], message.get("message", ""))
        result: Json = message["result"]
        return result

    def wait(self, condition: Callable[[], bool], timeout_s: float) -> None:
        """Handles events until `condition` (which their handlers make true) holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if (message := self._receive(deadline)) is not None:
                raise BiDiError("wait", "unexpected message", json.dumps(message)[:500])

    def _receive(self, deadline: float) -> Json | None:
        """The next message if it answers a command; an event goes to its handlers (None). TimeoutError at
        the deadline."""
        message: Json = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0)))
        if message.get("type") != "event":
            return message
        for handler in self._handlers.get(message["method"], []):
            handler(message["params"])
        return None

    def on(self, event: str, handler: Callable[[Json], None]) -> None:
        """Calls `handler` with each `event`'s params; subscribe to it with `subscribe`."""
        self._handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Callable[[Json], None]) -> None:
        self._handlers[event].remove(handler)

    def subscribe(self, events: list[str], contexts: list[str] | None = None) -> None:
        params: Json = {"events": events}
        if contexts is not None:
            params["contexts"] = contexts
        self.command("session.subscribe", params)


# --- Values in and out of scripts (the spec's LocalValue and RemoteValue) ------------------------------

_SPECIAL_NUMBERS = {"NaN": math.nan, "-0": -0.0, "Infinity": math.inf, "-Infinity": -math.inf}


def to_local(value: Any) -> Json:
    """A Python value as a script argument."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return {
                "type": "number",
                "value": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"),
            }
        return {"type": "number", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, list | tuple):
        return {"type": "array", "value": [to_local(item) for item in value]}
    if isinstance(value, dict):
        return {"type": "object", "value": [[str(key), to_local(item)] for key, item in value.items()]}
    raise TypeError(f"cannot pass {type(value).__name__} to a script")


def from_remote(remote: Json) -> Any:
    """A script's result as a Python value; DOM nodes stay as their remote value (with `sharedId`)."""
    kind = remote["type"]
    if kind in ("undefined", "null"):
        return None
    if kind == "number":
        value = remote["value"]
        return _SPECIAL_NUMBERS[value] if isinstance(value, str) else value
    if kind in ("string", "boolean"):
        return remote["value"]
    if kind == "bigint":
        return int(remote["value"])
    if kind in ("array", "set", "nodelist", "htmlcollection"):
        return [from_remote(item) for item in remote.get("value", [])]
    if kind in ("object", "map"):
        return {
            key if isinstance(key, str) else json.dumps(from_remote(key)): from_remote(item)
            for key, item in remote.get("value", [])
        }
    return remote


# --- A tab --------------------------------------------------------------------------------------------


class Tab:
    """One top-level browsing context and what the test does with it."""

    def __init__(self, session: Session, context: str) -> None:
        self.session = session
        self.context = context

    @classmethod
    def open(cls, session: Session, width: int, height: int) -> Tab:
        context = session.command("browsingContext.create", {"type": "tab"})["context"]
        session.command(
            "browsingContext.setViewport",
            {"context": context, "viewport": {"width": width, "height": height}},
        )
        return cls(session, context)

    def close(self) -> None:
        self.session.command("browsingContext.close", {"context": self.context})

    def navigate(self, url: str) -> None:
        self.session.command(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    def call(self, function: str, *arguments: Any) -> Any:
        """Runs a JavaScript function declaration in the page with `arguments`; awaits a returned promise."""
        answer = self.session.command(
            "script.callFunction",
            {
                "functionDeclaration": function,
                "arguments": [to_local(argument) for argument in arguments],
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
                "userActivation": False,
            },
        )
        if answer["type"] == "exception":
            details = answer["exceptionDetails"]
            raise ScriptError(f"{details.get('text')} (line {details.get('lineNumber')})")
        return from_remote(answer["result"])

    def element(self, selector: str) -> Json:
        """A shared reference to the first element matching `selector`, for input commands."""
        node = self.call("(selector) => document.querySelector(selector)", selector)
        if not isinstance(node, dict) or "sharedId" not in node:
            raise BiDiError("element", "no such element", selector)
        return {"sharedId": node["sharedId"]}

    def perform(self, *sources: Json) -> None:
        self.session.command("input.performActions", {"context": self.context, "actions": list(sources)})
        self.session.command("input.releaseActions", {"context": self.context})

    def click(self, selector: str) -> None:
        """A real mouse click (trusted events, user activation) on the element's centre, in view."""
        self.call(
            "(selector) => document.querySelector(selector).scrollIntoView({block: 'center'})", selector
        )
        origin = {"type": "element", "element": self.element(selector)}
        self.perform(
            {
                "type": "pointer",
                "id": "mouse",
                "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "x": 0, "y": 0, "origin": origin},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }
        )

    def type_text(self, text: str) -> None:
        """Key presses into the focused element."""
        keys: list[Json] = []
        for character in text:
            keys += [{"type": "keyDown", "value": character}, {"type": "keyUp", "value": character}]
        self.perform({"type": "key", "id": "keyboard", "actions": keys})

    def set_files(self, selector: str, *paths: Path) -> None:
        self.session.command(
            "input.setFiles",
            {
                "context": self.context,
                "element": self.element(selector),
                "files": [str(path) for path in paths],
            },
        )

    def download(self, selector: str, folder: Path, timeout_s: float = COMMAND_TIMEOUT_S) -> Path:
        """Clicks a link that downloads; the file as the browser saved it in `folder`."""
        ended: list[Json] = []

        def record(params: Json) -> None:
            if params["context"] == self.context:
                ended.append(params)

        self.session.on("browsingContext.downloadEnd", record)
        try:
            self.session.subscribe(["browsingContext.downloadEnd"], [self.context])
            self.session.command(
                "browser.setDownloadBehavior",
                {"downloadBehavior": {"type": "allowed", "destinationFolder": str(folder)}},
            )
            self.click(selector)
            self.session.wait(lambda: bool(ended), timeout_s)
        finally:
            self.session.off("browsingContext.downloadEnd", record)
        [end] = ended
        if end["status"] != "complete":
            raise BiDiError("download", end["status"], end["url"])
        return Path(end["filepath"])

    def screenshot(self, path: Path) -> None:
        """The whole document, not only the viewport."""
        answer = self.session.command(
            "browsingContext.captureScreenshot", {"context": self.context, "origin": "document"}
        )
        path.write_bytes(base64.b64decode(answer["data"]))


# --- Firefox ------------------------------------------------------------------------------------------


@contextmanager
def firefox(binary: str, log_path: Path, start_timeout_s: float = 60.0) -> Iterator[Session]:
    """Headless Firefox on a fresh profile with its BiDi server on a free local port; one session on it."""
    with tempfile.TemporaryDirectory(prefix="redub-firefox-") as profile:
        (Path(profile) / "user.js").write_text(
            "".join(
                f"user_pref({json.dumps(name)}, {json.dumps(value)});\n"
                for name, value in PREFERENCES.items()
            )
        )
        port = free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    "--headless",
                    "--no-remote",
                    "--profile",
                    profile,
                    f"--remote-debugging-port={port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until(
                    lambda: process.poll() is not None or reachable("127.0.0.1", port),
                    start_timeout_s,
                    "Firefox's WebDriver BiDi port",
                )
                if process.poll() is not None:
                    raise RuntimeError(f"Firefox exited with {process.returncode}; see {log_path}")
                with connect(f"ws://127.0.0.1:{port}/session", max_size=None, open_timeout=30) as socket:
                    session = Session(socket)
                    session.command("session.new", {"capabilities": {}})
                    try:
                        yield session
                    finally:
                        # Ends the session and closes the browser; the process is stopped below if not.
                        with suppress(BiDiError, ConnectionClosed, TimeoutError):
                            session.command("browser.close", timeout_s=15)
            finally:
                _stop(process)
