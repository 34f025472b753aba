"""The session state machine walked over its whole table: every legal transition succeeds
(publishing exactly its lifecycle event), every other one raises, is logged and changes
nothing. Each phase is reached from ``creating`` by legal transitions only."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import pytest

from actors.session.errors import IllegalTransition, SessionExiting, SessionStopped
from actors.session.state import PHASES, TRANSITIONS, Phase, SessionState
from schemas.sessions import LifecycleKind


class Recorder:
    """The lifecycle publisher: remembers what it was asked to publish."""

    def __init__(self) -> None:
        self.events: list[tuple[LifecycleKind, dict[str, Any]]] = []

    async def __call__(self, kind: LifecycleKind, **fields: Any) -> None:
        self.events.append((kind, fields))


def _paths() -> dict[Phase, list[Phase]]:
    """The shortest legal path from ``creating`` to every phase."""
    paths: dict[Phase, list[Phase]] = {"creating": []}
    queue: deque[Phase] = deque(["creating"])
    while queue:
        here = queue.popleft()
        for source, target in TRANSITIONS:
            if source == here and target not in paths:
                paths[target] = [*paths[here], target]
                queue.append(target)
    return paths


async def _reach(phase: Phase) -> tuple[SessionState, Recorder]:
    recorder = Recorder()
    state = SessionState("s-1", recorder)
    for step in _paths()[phase]:
        await state.to(step, next(iter(TRANSITIONS[(state.phase, step)])))
    assert state.phase == phase
    recorder.events.clear()
    return state, recorder


def test_every_phase_is_reachable_and_every_live_phase_can_stop() -> None:
    assert set(_paths()) == set(PHASES)
    for phase in PHASES:
        if phase not in ("creating", "stopping", "stopped"):
            assert (phase, "stopping") in TRANSITIONS, phase


async def test_every_legal_transition_succeeds_with_its_event() -> None:
    walked = 0
    for (source, target), events in TRANSITIONS.items():
        for event in events:
            state, recorder = await _reach(source)
            await state.to(target, event, reason="test")
            assert state.phase == target
            expected = [] if event is None else [(event, {"reason": "test"})]
            assert recorder.events == expected, (source, target, event)
            walked += 1
    assert walked >= len(TRANSITIONS)


async def test_every_illegal_transition_raises_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kinds: list[LifecycleKind | None] = [None, "running", "paused", "stopped", "migrated"]
    refused = 0
    for source in PHASES:
        for target in PHASES:
            for event in kinds:
                if event in TRANSITIONS.get((source, target), frozenset()):
                    continue
                state, recorder = await _reach(source)
                caplog.clear()
                with (
                    caplog.at_level(logging.ERROR, logger="actors.session.state"),
                    pytest.raises(IllegalTransition),
                ):
                    await state.to(target, event)
                assert state.phase == source
                assert recorder.events == []
                assert f"illegal transition {source} -> {target}" in caplog.text
                refused += 1
    assert refused > len(PHASES) ** 2


async def test_a_boot_after_a_migration_announces_migrated_else_running_or_resumed() -> None:
    state, _ = await _reach("running")
    await state.to("booting")
    assert state.boot_event(was_paused=False) == "running"
    assert state.boot_event(was_paused=True) == "resumed"
    await state.to("running", "running")
    await state.to("migrating")
    await state.to("booting")
    assert state.boot_event(was_paused=False) == "migrated"


async def test_no_boot_may_start_while_pausing_or_stopping() -> None:
    for phase, error in (
        ("pausing", SessionExiting),
        ("paused", SessionExiting),
        ("stopping", SessionStopped),
        ("stopped", SessionStopped),
    ):
        state, _ = await _reach(phase)  # type: ignore[arg-type]
        with pytest.raises(error):
            state.check_boot()
    state, _ = await _reach("dormant")
    state.check_boot()


async def test_waiting_for_a_phase_returns_once_it_is_reached() -> None:
    state, _ = await _reach("running")
    waiter = asyncio.ensure_future(state.wait_for("stopped"))
    await state.to("stopping")
    assert not waiter.done()
    await state.to("stopped", "stopped")
    await asyncio.wait_for(waiter, 5)
