"""Property-based run of the partner API against its own published OpenAPI schema.

Schemathesis generates requests for every operation (valid and invalid bodies, query strings and
path parameters) and sends them with a valid token to the WSGI app in-process. Whatever it sends,
the API must never answer with a server error ("never a 500 for any input").
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from hotline.wsgi import application
from reports.models import HashList
from reports.models.choices import PartnerKind
from reports.services.partners import partner_create

# The schema endpoint needs no token and no database: loading it here lets Schemathesis make one
# test per operation. (Its fixture-based lazy loader does not run on pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


@pytest.fixture
def token(transactional_db: None, settings) -> str:
    # transactional_db: the WSGI handler closes the connection after each request, which would
    # break the transaction django_db wraps a test in.
    settings.HOTLINE_API_RATE_LIMIT = 1_000_000  # thousands of requests a minute, all from one partner
    partner, issued = partner_create(name="Fuzzing partner", kind=PartnerKind.HOTLINE, country="NL")
    # Something to find for the operations that take an id.
    HashList.objects.create(name="Fuzzing list", source=partner)
    return issued.secret


@schema.parametrize()
@settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_causes_a_server_error(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error])
