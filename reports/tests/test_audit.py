"""The audit trail: hash-chained, verifiable, and append-only in the database."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from reports.models import AuditEvent
from reports.services.audit import audit_record, audit_verify


def _events(n: int) -> list[AuditEvent]:
    return [audit_record(action="test.event", actor_label="tester", details={"n": i}) for i in range(n)]


@pytest.mark.django_db
def test_events_are_chained():
    events = _events(3)
    assert events[0].prev_digest == ""
    assert events[1].prev_digest == events[0].digest
    assert events[2].prev_digest == events[1].digest
    assert len({event.digest for event in events}) == 3
    assert audit_verify() is None


@pytest.mark.django_db
def test_verify_audit_command_reports_an_intact_chain(capsys):
    _events(4)
    call_command("verify_audit")
    assert "Audit chain intact: 4 events." in capsys.readouterr().out


def _tamper(sql: str, params: list[object]) -> None:
    """Edit a row behind the app's back, as an attacker with superuser SQL access would: on
    PostgreSQL the append-only trigger must be bypassed first, which only a superuser can do."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = origin")


@pytest.mark.django_db
def test_verify_audit_finds_the_first_tampered_event():
    events = _events(5)
    _tamper("UPDATE reports_auditevent SET details = %s WHERE id = %s", ['{"n": 99}', events[2].pk])
    assert audit_verify() == events[2].pk
    with pytest.raises(CommandError, match=f"broken at event {events[2].pk}"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_finds_a_deleted_event():
    events = _events(4)
    _tamper("DELETE FROM reports_auditevent WHERE id = %s", [events[1].pk])
    assert audit_verify() == events[2].pk  # its link points at an event that is gone


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger is PostgreSQL's")
def test_database_refuses_update_and_delete_of_audit_rows():
    event = _events(1)[0]
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM reports_auditevent WHERE id = %s", [event.pk])
    event.refresh_from_db()
    assert event.action == "test.event"
    assert audit_verify() is None


@pytest.mark.django_db
def test_audit_row_rolls_back_with_the_change_it_records():
    def change_that_fails() -> None:
        with transaction.atomic():
            audit_record(action="test.rolled_back", actor_label="tester")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
