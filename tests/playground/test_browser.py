"""The playground in real browsers, headless Chromium (Debian's `chromium`, driven by Playwright) and
Firefox (Debian's `firefox-esr`, driven over WebDriver BiDi), against the real API server and Celery
worker: the same flows (flow.py) in each. Screenshots are saved under the test's temporary folder (its path
is printed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Caller
from tests.playground.flow import PlaygroundPage, dub_the_sample, show_a_problem_from_the_api
from tests.playground.pages import PageOpener, chromium, firefox_esr

CHROMIUM = shutil.which("chromium")
FIREFOX = shutil.which("firefox-esr")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            "chromium",
            marks=pytest.mark.skipif(
                CHROMIUM is None,
                reason="Debian's chromium is not installed (apt-get install chromium); "
                "Playwright cannot download it",
            ),
        ),
        pytest.param(
            "firefox",
            marks=pytest.mark.skipif(
                FIREFOX is None, reason="Debian's firefox-esr is not installed (apt-get install firefox-esr)"
            ),
        ),
    ],
)
def open_page(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PageOpener]:
    """One browser for the module's tests of it."""
    if request.param == "chromium":
        assert CHROMIUM is not None
        with chromium(CHROMIUM) as opener:
            yield opener
    else:
        assert FIREFOX is not None
        with firefox_esr(FIREFOX, tmp_path_factory.mktemp("firefox") / "firefox.log") as opener:
            yield opener


@pytest.fixture
def page(open_page: PageOpener) -> Iterator[PlaygroundPage]:
    with open_page() as opened:
        yield opened


def test_a_person_dubs_the_sample_in_the_playground(
    api_url: str, make_caller: Callable[..., Caller], page: PlaygroundPage, tmp_path: Path
) -> None:
    dub_the_sample(page, api_url, make_caller(rate_limit_per_minute=0, max_concurrent_jobs=0), tmp_path)


def test_the_playground_shows_a_problem_from_the_api(api_url: str, page: PlaygroundPage) -> None:
    show_a_problem_from_the_api(page, api_url)
