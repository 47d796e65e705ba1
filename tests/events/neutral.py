"""The backend-neutral event and audit tests that every backend keeping its outbox and
audit log in an app's own database runs (``tests/django_orm/test_django_events.py``,
``tests/sqlalchemy/test_sqlalchemy_events.py``): one list, so that the ORM backends run
the same ones.

A test module runs them over its own ``make_backend`` fixture (a factory of backends
sharing one database) by importing every name below::

    from tests.events.neutral import *  # noqa: F403

pytest collects them in that module, where its ``make_backend`` replaces the one of
``tests/events/conftest.py``; ``engines`` is the fixture they use. A test added to
``tests/events`` that any backend should pass is added here too.
"""

from __future__ import annotations

from tests.events.conftest import engines
from tests.events.test_audit import (
    test_every_request_has_one_entry,
    test_query_by_resource_principal_status_and_time,
    test_retention_prunes_old_entries,
)
from tests.events.test_member_patch import (
    test_a_member_only_patch_that_changes_nothing_stores_no_event,
    test_member_adds_and_removes_take_the_member_only_write_with_events_and_audit_on,
)
from tests.events.test_outbox import (
    test_a_consumer_resumes_from_its_position,
    test_a_huge_group_write_stores_bounded_events,
    test_a_refused_write_stores_no_event,
    test_every_change_has_its_event_in_order,
    test_nothing_is_stored_before_a_consumer_is_added,
    test_two_processes_share_a_consumer_without_duplicates,
    test_undelivered_events_survive_a_restart,
)

__all__ = [
    "engines",
    "test_a_consumer_resumes_from_its_position",
    "test_a_huge_group_write_stores_bounded_events",
    "test_a_member_only_patch_that_changes_nothing_stores_no_event",
    "test_a_refused_write_stores_no_event",
    "test_every_change_has_its_event_in_order",
    "test_every_request_has_one_entry",
    "test_member_adds_and_removes_take_the_member_only_write_with_events_and_audit_on",
    "test_nothing_is_stored_before_a_consumer_is_added",
    "test_query_by_resource_principal_status_and_time",
    "test_retention_prunes_old_entries",
    "test_two_processes_share_a_consumer_without_duplicates",
    "test_undelivered_events_survive_a_restart",
]
