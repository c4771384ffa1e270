"""`/healthz` answers for the database."""

from mailer import create_app


def test_healthz_reports_the_database(settings, database) -> None:
    response = create_app(settings, database).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"database": "ok"}}
