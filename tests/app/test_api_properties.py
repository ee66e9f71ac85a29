"""Property-based: Schemathesis generates requests for every operation of /openapi.json and sends them, with a
valid key, to the real API server (Postgres, Redis, S3, a worker). No answer may be a 5xx, and every answer
must be one the document declares, in its declared content type, headers and schema.

Small and derandomized, so `make test` stays fast and a failure reproduces: the same examples every run."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Caller

# Examples per operation and mode (19 operations): about 30 s in all against the local server.
EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api_url: str, caller: Caller, mode: GenerationMode) -> None:
    """Positive: requests the document allows. Negative: requests it forbids (wrong types, missing fields,
    bad formats), which must be refused with a documented 4xx, never a 5xx."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: dict[str, BaseException] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        # Each operation on its own: one that fails does not stop the others from being tried.
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def answers_as_documented(case: schemathesis.Case) -> None:
            # A valid key on every request: the cases test the operations, not authentication (and
            # unauthenticated floods would trip the per-address limit on failed authentications).
            case.call_and_validate(base_url=api_url, headers=caller.headers, checks=CHECKS, timeout=30)

        try:
            answers_as_documented()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE, operation.label  # nothing to get wrong (no parameters)
        except Exception as failure:
            failures[operation.label] = failure
    _cancel_unfinished(caller)
    assert not failures, "\n\n".join(f"{label}: {failure}" for label, failure in failures.items())


def _cancel_unfinished(caller: Caller) -> None:
    """The generated dubs and preflights are nobody's: the shared worker skips them instead of fetching
    their made-up URLs while later tests wait for it."""
    from sqlalchemy import update

    from app.core.db import new_session
    from app.models import Job, Preflight

    with new_session() as session:
        for model in (Job, Preflight):
            session.execute(
                update(model)
                .where(model.account_id == caller.account_id, model.status.in_(["queued", "processing"]))
                .values(status="canceled")
            )
        session.commit()
