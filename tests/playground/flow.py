"""The playground's end-to-end flows, written once for every browser.

A flow acts and checks through `PlaygroundPage`: a handful of actions and JavaScript run in the page, which
test_chromium.py (Playwright) and test_firefox.py (WebDriver BiDi) each provide. What a person sees and what
the API then holds are asserted here, the same way in both browsers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx

from tests.conftest import ROOT, Caller

SLOW_MS = 240_000  # a preflight and a dub on a busy 2-core machine
EXPECT_MS = 10_000  # for what follows at once from a click (the DOM, the page's own API calls)
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1200, 900


class PlaygroundPage(Protocol):
    """A browser tab as the flows drive it."""

    @property
    def requested_urls(self) -> list[str]:
        """Every URL the page asked for, in order."""
        ...

    @property
    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and answers of 400 or more, as they came."""
        ...

    def goto(self, url: str) -> None: ...
    def fill(self, selector: str, text: str) -> None: ...
    def set_file(self, selector: str, path: Path) -> None: ...
    def click(self, selector: str) -> None: ...
    def select(self, selector: str, value: str) -> None: ...

    def evaluate(self, function: str, argument: Any = None) -> Any:
        """Calls a JavaScript function declaration in the page with one argument; awaits a promise."""
        ...

    def wait_for(self, function: str, argument: Any, timeout_ms: int) -> bool:
        """Whether `function(argument)` became truthy within the timeout."""
        ...

    def download(self, selector: str, folder: Path) -> Path:
        """Clicks a download link; the file the browser saved into `folder`."""
        ...

    def screenshot(self, path: Path) -> None:
        """The whole page, not only the viewport."""
        ...


# Visible as a person means it: laid out (no `hidden`/display:none up the tree) and not visibility:hidden.
VISIBLE = """(selector) => {
  const node = document.querySelector(selector);
  return !!node && node.getClientRects().length > 0 && getComputedStyle(node).visibility !== "hidden";
}"""
HIDDEN = f"(selector) => !({VISIBLE})(selector)"
CONTAINS = "([selector, text]) => (document.querySelector(selector)?.textContent ?? '').includes(text)"
HAS_ATTRIBUTE = "([selector, name, value]) => document.querySelector(selector)?.getAttribute(name) === value"
COUNT = "(selector) => document.querySelectorAll(selector).length"
BOX = """(selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  return {x: box.x, y: box.y, width: box.width, height: box.height};
}"""
PROPERTY = "([selector, name]) => document.querySelector(selector)[name]"
ERROR_TEXT = "() => document.getElementById('error')?.textContent ?? ''"


def wait(page: PlaygroundPage, what: str, function: str, argument: Any, timeout_ms: int = EXPECT_MS) -> None:
    if not page.wait_for(function, argument, timeout_ms):
        raise AssertionError(
            f"{what}: not within {timeout_ms / 1000:g} s; the page's error box: "
            f"{page.evaluate(ERROR_TEXT)!r}; problems: {page.problems}"
        )


def expect_visible(page: PlaygroundPage, selector: str, timeout_ms: int = EXPECT_MS) -> None:
    wait(page, f"{selector} visible", VISIBLE, selector, timeout_ms)


def expect_hidden(page: PlaygroundPage, selector: str) -> None:
    wait(page, f"{selector} hidden", HIDDEN, selector)


def expect_text(page: PlaygroundPage, selector: str, text: str) -> None:
    wait(page, f"{selector} contains {text!r}", CONTAINS, [selector, text])


def expect_attribute(page: PlaygroundPage, selector: str, name: str, value: str) -> None:
    wait(page, f"{selector} has {name}={value!r}", HAS_ATTRIBUTE, [selector, name, value])


def origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def dub_the_sample(page: PlaygroundPage, api_url: str, caller: Caller, shots: Path) -> None:
    """The whole flow on the bundled sample, as a person goes through it; screenshots go to `shots`."""
    page.goto(f"{api_url}/playground")
    page.fill("#api-key", caller.key)
    page.set_file("#video-file", ROOT / "samples" / "speaker.mp4")
    page.set_file("#audio-file", ROOT / "samples" / "dub_speech.m4a")
    page.click("#run-preflight")

    # The preflight: the sample's one face, boxed on the frame, in the timeline, chosen by default.
    face = '#frame .face[data-track="0"]'
    expect_visible(page, face, timeout_ms=SLOW_MS)
    expect_hidden(page, "#error")
    expect_text(page, face, "Face 0")
    assert page.evaluate(PROPERTY, ["#frame-image", "naturalWidth"]) == 384
    box = page.evaluate(BOX, face)
    image = page.evaluate(BOX, "#frame-image")
    assert image["x"] < box["x"] < box["x"] + box["width"] < image["x"] + image["width"], (box, image)
    # The sample is a still photo under a voice: its face is present throughout but never moves its lips,
    # so the service falls back to the most prominent face and says so.
    expect_visible(page, '#timeline .track[data-track="0"] .present')
    assert page.evaluate(COUNT, '#timeline .track[data-track="0"] .speaking') == 0
    expect_visible(page, "#timeline .voice")
    expect_text(page, "#warnings", "most prominent face")
    expect_text(page, "#facts", "Length plan (auto): bounce")
    expect_attribute(page, face, "aria-pressed", "true")
    page.screenshot(shots / "1-preflight.png")

    # Clicking the face un-chooses it and clicking again chooses it: the dub will pin it.
    page.click(face)
    expect_attribute(page, face, "aria-pressed", "false")
    expect_text(page, "#speaker-choice", "No face chosen")
    page.click(face)
    expect_attribute(page, face, "aria-pressed", "true")
    page.select("#sync-mode", "cut_off")
    page.click("#start-dub")
    expect_visible(page, "#stages li", timeout_ms=30_000)
    page.screenshot(shots / "2-progress.png")

    expect_visible(page, "#step-result", timeout_ms=SLOW_MS)
    expect_hidden(page, "#error")
    assert page.evaluate(COUNT, "#stages li.done") == 8  # every stage, `done` included
    expect_hidden(page, "#cancel-dub")
    dub_url = page.evaluate(PROPERTY, ["#dubbed", "src"])
    listed = httpx.get(f"{api_url}/v1/dubs", headers=caller.headers).json()["data"]
    [dub] = listed
    assert dub["status"] == "succeeded" and dub["sync_mode"] == "cut_off"
    assert dub["speakers"] == [{"track_id": 0}] and dub["analysis"]["speaker_selection"] == "pinned"
    assert dub_url == dub["output"]["url"]
    assert (
        page.evaluate("(selector) => document.querySelector(selector).getAttribute('href')", "#download")
        == (dub["output"]["url"])
    )
    downloaded = httpx.get(dub["output"]["url"])
    assert downloaded.status_code == 200 and downloaded.content[4:8] == b"ftyp"

    # Both videos load; Play runs them together and the original follows the dub's clock.
    both = "['original', 'dubbed'].map(id => document.getElementById(id))"
    wait(page, "both videos loaded", f"() => {both}.every(video => video.readyState >= 2)", None, 30_000)
    page.screenshot(shots / "3-compare.png")
    page.click("#play-both")
    wait(
        page,
        "the dub played 1.5 s",
        "() => document.getElementById('dubbed').currentTime > 1.5",
        None,
        30_000,
    )
    page.click("#play-both")
    wait(page, "the dub paused", "() => document.getElementById('dubbed').paused", None)
    times = page.evaluate(f"() => {both}.map(video => video.currentTime)")
    assert abs(times[0] - times[1]) < 0.2, times
    # Seeking moves both.
    page.evaluate(
        "() => { const seek = document.getElementById('seek'); seek.value = '200';"
        " seek.dispatchEvent(new Event('input')); }"
    )
    wait(
        page,
        "both videos at 20 %",
        f"() => {{ const [a, b] = {both}; return Math.abs(b.currentTime - 0.2 * b.duration) < 0.1"
        " && Math.abs(a.currentTime - b.currentTime) < 0.2; }",
        None,
    )

    # A/B: one video at a time, and the one shown is the one heard.
    side_a, side_b = '#players figure[data-side="a"]', '#players figure[data-side="b"]'
    expect_hidden(page, "#swap")
    page.click("#toggle-view")
    expect_hidden(page, side_a)
    expect_visible(page, side_b)
    page.click("#swap")
    expect_visible(page, side_a)
    expect_hidden(page, side_b)
    assert page.evaluate(f"() => {both}.map(video => video.muted)") == [False, True]
    page.screenshot(shots / "4-ab.png")
    page.click("#toggle-view")
    expect_visible(page, side_a)
    expect_visible(page, side_b)

    # The link downloads (the storage names the file; a cross-origin link's `download` name is ignored)
    # rather than opening the video in the tab.
    saved = page.download("#download", shots)
    assert saved.name == f"dub-{dub['id']}.mp4"
    assert saved.read_bytes() == downloaded.content
    expect_visible(page, "#step-result")

    # The page, the API and the storage's presigned links: nothing else was asked for.
    origins = {origin(url) for url in page.requested_urls if not url.startswith(("blob:", "data:"))}
    assert origin(api_url) in origins, page.requested_urls  # the requests were seen at all
    assert origins <= {origin(api_url), origin(dub["output"]["url"])}, origins
    assert page.problems == []
    print(f"playground screenshots: {shots}")


def show_a_problem_from_the_api(page: PlaygroundPage, api_url: str) -> None:
    """A bad key: the API's problem shows in the page, and nothing moves on to the preflight."""
    page.goto(f"{api_url}/playground")
    page.fill("#api-key", "rdb_not_a_key")
    page.fill("#video-url", "https://example.com/talk.mp4")
    page.fill("#audio-url", "https://example.com/talk.fr.m4a")
    page.click("#run-preflight")
    expect_text(page, "#error", "unauthorized")
    expect_hidden(page, "#step-preflight")
