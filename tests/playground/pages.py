"""The two browsers the playground is tested in, each adapted to what the flows drive (flow.PlaygroundPage):
Debian's `chromium` through Playwright, Debian's `firefox-esr` through WebDriver BiDi (bidi.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.playground.bidi import Json, Tab, firefox
from tests.playground.flow import VIEWPORT_HEIGHT, VIEWPORT_WIDTH, PlaygroundPage

# Opens a fresh page (its own cookies and storage) and closes it after use.
PageOpener = Callable[[], AbstractContextManager[PlaygroundPage]]
POLL_S = 0.2  # how often a Firefox wait asks the page again


class ChromiumPage:
    """A Playwright page as the flows drive it (flow.PlaygroundPage)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requested_urls: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.requested_urls.append(request.url))
        page.on(
            "console", lambda message: self.problems.append(message.text) if message.type == "error" else None
        )
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("response", lambda answer: self.problems.append(answer.url) if answer.status >= 400 else None)

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def fill(self, selector: str, text: str) -> None:
        self.page.fill(selector, text)

    def set_file(self, selector: str, path: Path) -> None:
        self.page.set_input_files(selector, path)

    def click(self, selector: str) -> None:
        self.page.click(selector)

    def select(self, selector: str, value: str) -> None:
        self.page.select_option(selector, value)

    def evaluate(self, function: str, argument: Any = None) -> Any:
        return self.page.evaluate(function, argument)

    def wait_for(self, function: str, argument: Any, timeout_ms: int) -> bool:
        try:
            self.page.wait_for_function(function, arg=argument, timeout=timeout_ms)
        except PlaywrightTimeout:
            return False
        return True

    def download(self, selector: str, folder: Path) -> Path:
        with self.page.expect_download() as started:
            self.page.click(selector)
        saved = folder / started.value.suggested_filename
        started.value.save_as(saved)
        return saved

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=path, full_page=True)


class FirefoxPage:
    """A BiDi tab as the flows drive it (flow.PlaygroundPage)."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.requested_urls: list[str] = []
        self.problems: list[str] = []
        # Console errors and uncaught exceptions alike are log entries (types "console" and "javascript").
        self._handlers = {
            "network.beforeRequestSent": self._request,
            "network.responseCompleted": self._response,
            "log.entryAdded": self._log,
        }
        for event, handler in self._handlers.items():
            tab.session.on(event, handler)
        tab.session.subscribe(list(self._handlers), [tab.context])

    def close(self) -> None:
        for event, handler in self._handlers.items():
            self.tab.session.off(event, handler)
        self.tab.close()

    # The session outlives this tab: events of other tabs are not this page's.
    def _request(self, params: Json) -> None:
        if params["context"] == self.tab.context:
            self.requested_urls.append(params["request"]["url"])

    def _response(self, params: Json) -> None:
        if params["context"] == self.tab.context and params["response"]["status"] >= 400:
            self.problems.append(params["response"]["url"])

    def _log(self, params: Json) -> None:
        if params["source"].get("context") == self.tab.context and params["level"] == "error":
            self.problems.append(params.get("text") or "")

    def goto(self, url: str) -> None:
        self.tab.navigate(url)

    def fill(self, selector: str, text: str) -> None:
        self.tab.call("(selector) => { document.querySelector(selector).value = ''; }", selector)
        self.tab.click(selector)
        self.tab.type_text(text)

    def set_file(self, selector: str, path: Path) -> None:
        self.tab.set_files(selector, path)

    def click(self, selector: str) -> None:
        self.tab.click(selector)

    def select(self, selector: str, value: str) -> None:
        # What choosing an option does; a native drop-down is not part of the page to test.
        self.tab.call(
            "(selector, value) => { const select = document.querySelector(selector); select.value = value;"
            " for (const type of ['input', 'change']) {"
            " select.dispatchEvent(new Event(type, {bubbles: true})); } }",
            selector,
            value,
        )

    def evaluate(self, function: str, argument: Any = None) -> Any:
        return self.tab.call(function, argument)

    def wait_for(self, function: str, argument: Any, timeout_ms: int) -> bool:
        deadline = time.monotonic() + timeout_ms / 1000
        while not self.tab.call(function, argument):
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def download(self, selector: str, folder: Path) -> Path:
        return self.tab.download(selector, folder)

    def screenshot(self, path: Path) -> None:
        self.tab.screenshot(path)


@contextmanager
def chromium(binary: str) -> Iterator[PageOpener]:
    with sync_playwright() as playwright:
        # The sample is played with sound after a click; headless has no speakers to ask about.
        browser = playwright.chromium.launch(
            executable_path=binary, args=["--autoplay-policy=no-user-gesture-required"]
        )

        @contextmanager
        def open_page() -> Iterator[PlaygroundPage]:
            context = browser.new_context(viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT})
            try:
                yield ChromiumPage(context.new_page())
            finally:
                context.close()

        yield open_page
        browser.close()


@contextmanager
def firefox_esr(binary: str, log_path: Path) -> Iterator[PageOpener]:
    with firefox(binary, log_path) as session:

        @contextmanager
        def open_page() -> Iterator[PlaygroundPage]:
            page = FirefoxPage(Tab.open(session, VIEWPORT_WIDTH, VIEWPORT_HEIGHT))
            try:
                yield page
            finally:
                page.close()

        yield open_page
