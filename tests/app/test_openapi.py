"""The OpenAPI document: bearer auth, problem schemas per status, enums, headers, webhook events."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_the_openapi_document_describes_what_integrators_meet(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Your API key, `rdb_…`.",
    }
    assert schema["security"] == [{"bearer": []}]
    assert schema["paths"]["/healthz"]["get"]["security"] == []
    create = schema["paths"]["/v1/dubs"]["post"]
    assert create["responses"]["409"]["description"] == "Conflict"
    assert "code" in create["responses"]["409"]["content"]["application/problem+json"]["schema"]["properties"]
    assert schema["paths"]["/v1/files"]["post"]["responses"]["413"]["description"] == "Content Too Large"
    headers = create["responses"]["202"]["headers"]
    assert {"Location", "Idempotent-Replayed", "RateLimit-Remaining", "X-Request-Id"} <= set(headers)
    assert "Retry-After" in create["responses"]["429"]["headers"]
    dub = schema["components"]["schemas"]["DubOut"]["properties"]
    assert "succeeded" in dub["status"]["enum"]
    assert "rendering" in schema["components"]["schemas"]["DubProgress"]["properties"]["stage"]["enum"]
    assert schema["components"]["schemas"]["DubCreate"]["examples"]
    assert set(schema["webhooks"]) == {
        "dub.started",
        "dub.progress",
        "dub.succeeded",
        "dub.failed",
        "dub.canceled",
        "preflight.succeeded",
        "preflight.failed",
    }


def test_the_docs_load_their_scripts_from_this_api_not_a_cdn(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html and "unpkg" not in html
        scripts = [part.split('"')[0] for part in html.split('src="')[1:]]
        assert scripts and all(script.startswith("/docs-assets/") for script in scripts), scripts
        for script in scripts:
            assert client.get(script).status_code == 200
