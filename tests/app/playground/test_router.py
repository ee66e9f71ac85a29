"""The playground page and its assets as the API serves them; tests/playground drives it in a browser."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.playground.router import STATIC


def test_the_playground_page_and_its_assets_come_from_this_api(client: TestClient) -> None:
    page = client.get("/playground")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    linked = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert "/playground/assets/playground.js" in linked and "/playground/assets/playground.css" in linked
    # Nothing from another site: every link and script is a path on this server.
    assert all(link.startswith("/") or link == "data:," for link in linked), linked
    for name, media_type in (("playground.js", "javascript"), ("playground.css", "text/css")):
        asset = client.get(f"/playground/assets/{name}")
        assert asset.status_code == 200 and media_type in asset.headers["content-type"]
    assert client.get("/playground/assets/nothing.js").status_code == 404
    # The page is not part of the API's contract.
    assert "/playground" not in client.get("/openapi.json").json()["paths"]


def test_the_script_and_styles_name_no_other_site() -> None:
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        addresses = re.findall(r"https?://[^\s\"'<)…]+", text)
        assert addresses == [], (path.name, addresses)
