"""`/playground`: a page to try the API by hand with a key. Plain HTML, CSS and JavaScript shipped in this
package and served by the API itself: no build step, no CDN, no request to any other site."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/playground/assets"
STATIC = Path(__file__).parent / "static"
# Scripts, styles and API calls stay on this origin; media may come from the storage's presigned URLs or
# the URLs a person types in, and previews of local files are blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: http: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/playground")
def playground() -> HTMLResponse:
    return HTMLResponse(
        (STATIC / "index.html").read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Referrer-Policy": "no-referrer"},
    )


def install_playground(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC), name="playground-assets")
    app.include_router(router)
