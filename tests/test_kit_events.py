"""The kit's event checks (hub.testing.event_checks) on deliberately broken copies of the
civil-status adapter: each breakage must make the battery fail, with a message that says
what broke, so an integrator's mistake in an event type cannot pass it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from adapters.civil_status import CivilStatusAdapter
from adapters.population import PopulationAdapter
from hub.adapter import Adapter
from hub.errors import HubError, UpstreamBadResponse
from hub.events import ChangePage, UpstreamEvent
from hub.testing import AdapterConformance
from mocks import create_mock_app
from tests import test_conformance as conformance

DEATH = "death-registered"


def battery(adapter: type[Adapter], **declared: Any) -> AdapterConformance:
    """The civil-status battery (its samples and fault paths) run on `adapter`; made here,
    inside a function, so pytest collects none of them."""

    class Battery(AdapterConformance):
        mock = staticmethod(lambda: create_mock_app("civil-status"))
        fault_paths = conformance.TestCivilStatusConformance.fault_paths
        events = conformance.TestCivilStatusConformance.events

    Battery.adapter = adapter
    for name, value in declared.items():
        setattr(Battery, name, value)
    return Battery()


def rewritten(change: Any) -> type[CivilStatusAdapter]:
    """The civil-status adapter whose feed's pages go through `change(adapter, cursor, page)`."""

    class Broken(CivilStatusAdapter):
        async def changes(self, cursor: str | None, limit: int) -> ChangePage:
            page = await super().changes(cursor, limit)
            return change(self, cursor, page)

    return Broken


def each_event(change: Any) -> type[CivilStatusAdapter]:
    """The civil-status adapter whose feed's events go through `change(event)`."""
    return rewritten(
        lambda adapter, cursor, page: ChangePage(
            [change(e) for e in page.events], page.cursor, page.more
        )
    )


def test_the_real_adapter_passes_the_event_checks(tmp_path: Path) -> None:
    checks = battery(CivilStatusAdapter)
    checks.test_event_types_in_the_catalogue()
    checks.test_event_samples_cover_the_event_types()
    checks.test_feed_event_fits_its_declaration(DEATH, tmp_path / "fits")
    checks.test_feed_cursor_advances_and_a_repeat_adds_nothing(DEATH, tmp_path / "cursor")
    checks.test_garbage_feed_page_is_a_clear_error(tmp_path / "garbage")


def test_a_payload_of_the_wrong_shape_fails(tmp_path: Path) -> None:
    # built without validation, the death record left out: not what the catalogue says
    def without_record(event: UpstreamEvent) -> UpstreamEvent:
        fields = event.payload.model_dump(exclude={"record"})
        payload = type(event.payload).model_construct(**fields)
        return UpstreamEvent(event.type, event.key, payload, event.occurred_at)

    checks = battery(each_event(without_record))
    with pytest.raises(AssertionError, match=r"JSON Schema.*'record' is a required property"):
        checks.test_feed_event_fits_its_declaration(DEATH, tmp_path)


def test_a_payload_of_another_model_fails(tmp_path: Path) -> None:
    from adapters.civil_status.models import MarriageRegistered

    def as_marriage(event: UpstreamEvent) -> UpstreamEvent:
        record = getattr(event.payload, "record")  # noqa: B009 - every civil-status payload
        payload = MarriageRegistered(record=record)
        return UpstreamEvent(event.type, event.key, payload, event.occurred_at)

    checks = battery(each_event(as_marriage))
    with pytest.raises(AssertionError, match="not the declared DeathRegistered"):
        checks.test_feed_event_fits_its_declaration(DEATH, tmp_path)


def test_a_personal_event_without_its_subject_fails(tmp_path: Path) -> None:
    def anonymous(event: UpstreamEvent) -> UpstreamEvent:
        kind = next(k for k in CivilStatusAdapter.event_types if k.name == event.type)
        payload = event.payload.model_copy(update=dict.fromkeys(kind.subjects))
        return UpstreamEvent(event.type, event.key, payload, event.occurred_at)

    checks = battery(each_event(anonymous))
    with pytest.raises(AssertionError, match="none of its subject paths"):
        checks.test_feed_event_fits_its_declaration(DEATH, tmp_path)


def test_new_keys_on_a_repeated_page_fail(tmp_path: Path) -> None:
    reads = itertools.count()

    def rekeyed(event: UpstreamEvent) -> UpstreamEvent:
        # a key made at read time (a counter, a clock, a UUID): each read is a new event
        return UpstreamEvent(event.type, f"{event.key}:{next(reads)}", event.payload)

    checks = battery(each_event(rekeyed))
    with pytest.raises(AssertionError, match="other keys"):
        checks.test_feed_cursor_advances_and_a_repeat_adds_nothing(DEATH, tmp_path)


def test_a_cursor_that_does_not_move_fails(tmp_path: Path) -> None:
    stuck = rewritten(lambda adapter, cursor, page: ChangePage(page.events, cursor, False))
    with pytest.raises(AssertionError, match="cursor did not advance"):
        battery(stuck).test_feed_cursor_advances_and_a_repeat_adds_nothing(DEATH, tmp_path)


def test_a_garbage_page_that_crashes_the_adapter_fails(tmp_path: Path) -> None:
    class Crashing(CivilStatusAdapter):
        async def changes(self, cursor: str | None, limit: int) -> ChangePage:
            try:
                return await super().changes(cursor, limit)
            except HubError as exc:
                raise KeyError("danhSach") from exc  # as unchecked indexing would

    with pytest.raises(AssertionError, match="raised KeyError, not a hub error"):
        battery(Crashing).test_garbage_feed_page_is_a_clear_error(tmp_path)


def test_a_garbage_page_quoted_in_the_error_fails(tmp_path: Path) -> None:
    class Quoting(CivilStatusAdapter):
        async def changes(self, cursor: str | None, limit: int) -> ChangePage:
            try:
                return await super().changes(cursor, limit)
            except HubError:
                answer = await self.http.get(
                    f"/api/v1/hotich/biendong?tuSoThuTu={int(cursor or 0)}&soLuong={limit}",
                    auth=self._auth,
                )
                raise UpstreamBadResponse(f"bad feed page: {answer.text[:300]}") from None

    with pytest.raises(AssertionError, match="the error shown to the caller carries"):
        battery(Quoting).test_garbage_feed_page_is_a_clear_error(tmp_path)


def test_an_event_type_without_a_sample_fails(tmp_path: Path) -> None:
    samples = {k: v for k, v in conformance.TestCivilStatusConformance.events.items() if k != DEATH}
    checks = battery(CivilStatusAdapter, events=samples)
    with pytest.raises(AssertionError, match=r"no sample in `events`: \['death-registered'\]"):
        checks.test_event_samples_cover_the_event_types()
    with pytest.raises(AssertionError, match="'death-registered' has no sample"):
        checks.test_feed_event_fits_its_declaration(DEATH, tmp_path)


def test_a_sample_of_no_such_event_type_fails() -> None:
    samples = {
        **conformance.TestCivilStatusConformance.events,
        "divorce-registered": lambda kit: None,
    }
    with pytest.raises(AssertionError, match="names no such event type"):
        battery(CivilStatusAdapter, events=samples).test_event_samples_cover_the_event_types()


def test_an_adapter_without_event_types_is_unaffected(tmp_path: Path) -> None:
    checks = battery(PopulationAdapter, events={}, fault_paths=None)
    type(checks).mock = staticmethod(lambda: create_mock_app("population"))
    checks.test_event_types_in_the_catalogue()
    checks.test_event_samples_cover_the_event_types()
    checks.test_garbage_feed_page_is_a_clear_error(tmp_path)  # no feed: nothing to fail
    # the per-type checks get the one parameter "none" and pass at once
    assert checks.test_feed_event_fits_its_declaration(event_type=None, tmp_path=tmp_path) is None
