"""How many processes and request threads a server runs, by database; the address
the links e-mailed to patients start with."""

from __future__ import annotations

import os

import pytest

from needlepoint.config import Settings


def test_sqlite_serves_with_a_process_per_core_and_two_request_threads_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    s = Settings(database_url="sqlite:////tmp/clinic.db", secret_key="k" * 40)
    assert s.resolved_workers() == 4
    assert s.resolved_threads() == 2


def test_postgresql_serves_with_four_threads_leaving_a_connection_for_the_writer() -> None:
    s = Settings(database_url="postgresql://db/clinic", pool_size=6, pool_overflow=2)
    assert s.resolved_threads() == 4
    assert s.resolved_workers() >= 1
    small = Settings(database_url="postgresql://db/clinic", pool_size=2, pool_overflow=0)
    assert small.resolved_threads() == 1  # never the background writer's connection


def test_explicit_settings_win() -> None:
    s = Settings(database_url="sqlite:////tmp/clinic.db", threads=5, workers=3)
    assert (s.resolved_threads(), s.resolved_workers()) == (5, 3)


def test_patient_links_start_with_the_public_address_else_the_servers_own() -> None:
    assert Settings(public_url="https://clinic.example/").resolved_public_url() == (
        "https://clinic.example"
    )
    assert Settings(host="10.0.0.5", port=8080).resolved_public_url() == "http://10.0.0.5:8080"
    assert Settings(host="::1", port=8000).resolved_public_url() == "http://[::1]:8000"
