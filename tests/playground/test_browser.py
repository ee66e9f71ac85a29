"""The playground in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright) against the
real API server and Celery worker, through the whole flow on the bundled sample. Screenshots are saved under
the test's temporary folder (its path is printed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ROOT, Caller

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium); Playwright cannot download it",
)
SLOW_MS = 240_000  # a preflight and a dub on a busy 2-core machine


def origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        # The sample is played with sound after a click; headless has no speakers to ask about.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def test_a_person_dubs_the_sample_in_the_playground(
    api_url: str,
    make_caller: Callable[..., Caller],
    page: Page,
    tmp_path: Path,
) -> None:
    caller = make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0)
    origins: set[str] = set()
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(("blob:", "data:")) else origins.add(origin(request.url))
        ),
    )
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda answer: problems.append(answer.url) if answer.status >= 400 else None)

    page.goto(f"{api_url}/playground")
    page.fill("#api-key", caller.key)
    page.set_input_files("#video-file", ROOT / "samples" / "speaker.mp4")
    page.set_input_files("#audio-file", ROOT / "samples" / "dub_speech.m4a")
    page.click("#run-preflight")

    # The preflight: the sample's one face, boxed on the frame, in the timeline, chosen by default.
    face = page.locator('#frame .face[data-track="0"]')
    expect(face).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#error")).to_be_hidden()
    expect(face).to_contain_text("Face 0")
    assert page.eval_on_selector("#frame-image", "image => image.naturalWidth") == 384
    box = face.bounding_box()
    image = page.locator("#frame-image").bounding_box()
    assert box is not None and image is not None
    assert image["x"] < box["x"] < box["x"] + box["width"] < image["x"] + image["width"]
    # The sample is a still photo under a voice: its face is present throughout but never moves its lips,
    # so the service falls back to the most prominent face and says so.
    expect(page.locator('#timeline .track[data-track="0"] .present')).to_be_visible()
    assert page.locator('#timeline .track[data-track="0"] .speaking').count() == 0
    expect(page.locator("#timeline .voice").first).to_be_visible()
    expect(page.locator("#warnings")).to_contain_text("most prominent face")
    expect(page.locator("#facts")).to_contain_text("Length plan (auto): bounce")
    expect(face).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=tmp_path / "1-preflight.png", full_page=True)

    # Clicking the face un-chooses it and clicking again chooses it: the dub will pin it.
    face.click()
    expect(face).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#speaker-choice")).to_contain_text("No face chosen")
    face.click()
    expect(face).to_have_attribute("aria-pressed", "true")
    page.select_option("#sync-mode", "cut_off")
    page.click("#start-dub")
    expect(page.locator("#stages li").first).to_be_visible(timeout=30_000)
    page.screenshot(path=tmp_path / "2-progress.png", full_page=True)

    expect(page.locator("#step-result")).to_be_visible(timeout=SLOW_MS)
    expect(page.locator("#error")).to_be_hidden()
    assert page.locator("#stages li.done").count() == 8  # every stage, `done` included
    expect(page.locator("#cancel-dub")).to_be_hidden()
    dub_url = page.eval_on_selector("#dubbed", "video => video.src")
    listed = httpx.get(f"{api_url}/v1/dubs", headers=caller.headers).json()["data"]
    [dub] = listed
    assert dub["status"] == "succeeded" and dub["sync_mode"] == "cut_off"
    assert dub["speakers"] == [{"track_id": 0}] and dub["analysis"]["speaker_selection"] == "pinned"
    assert dub_url == dub["output"]["url"]
    assert page.get_attribute("#download", "href") == dub["output"]["url"]
    downloaded = httpx.get(dub["output"]["url"])
    assert downloaded.status_code == 200 and downloaded.content[4:8] == b"ftyp"

    # Both videos load; Play runs them together and the original follows the dub's clock.
    page.wait_for_function(
        "() => ['original', 'dubbed'].every(id => document.getElementById(id).readyState >= 2)",
        timeout=30_000,
    )
    page.screenshot(path=tmp_path / "3-compare.png", full_page=True)
    page.click("#play-both")
    page.wait_for_function("() => document.getElementById('dubbed').currentTime > 1.5", timeout=30_000)
    page.click("#play-both")
    page.wait_for_function("() => document.getElementById('dubbed').paused")
    times = page.evaluate("() => ['original', 'dubbed'].map(id => document.getElementById(id).currentTime)")
    assert abs(times[0] - times[1]) < 0.2, times
    # Seeking moves both.
    page.eval_on_selector("#seek", "seek => { seek.value = '200'; seek.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
        "() => { const [a, b] = ['original', 'dubbed'].map(id => document.getElementById(id));"
        " return Math.abs(b.currentTime - 0.2 * b.duration) < 0.1"
        " && Math.abs(a.currentTime - b.currentTime) < 0.2; }"
    )

    # A/B: one video at a time, and the one shown is the one heard.
    expect(page.locator("#swap")).to_be_hidden()
    page.click("#toggle-view")
    expect(page.locator('#players figure[data-side="a"]')).to_be_hidden()
    expect(page.locator('#players figure[data-side="b"]')).to_be_visible()
    page.click("#swap")
    expect(page.locator('#players figure[data-side="a"]')).to_be_visible()
    expect(page.locator('#players figure[data-side="b"]')).to_be_hidden()
    muted = "() => ['original', 'dubbed'].map(id => document.getElementById(id).muted)"
    assert page.evaluate(muted) == [False, True]
    page.screenshot(path=tmp_path / "4-ab.png", full_page=True)
    page.click("#toggle-view")
    expect(page.locator('#players figure[data-side="a"]')).to_be_visible()
    expect(page.locator('#players figure[data-side="b"]')).to_be_visible()

    # The page, the API and the storage's presigned links: nothing else was asked for.
    assert origins <= {origin(api_url), origin(dub["output"]["url"])}, origins
    assert problems == []
    print(f"playground screenshots: {tmp_path}")


def test_the_playground_shows_a_problem_from_the_api(api_url: str, page: Page) -> None:
    page.goto(f"{api_url}/playground")
    page.fill("#api-key", "rdb_not_a_key")
    page.fill("#video-url", "https://example.com/talk.mp4")
    page.fill("#audio-url", "https://example.com/talk.fr.m4a")
    page.click("#run-preflight")
    expect(page.locator("#error")).to_contain_text("unauthorized")
    expect(page.locator("#step-preflight")).to_be_hidden()
