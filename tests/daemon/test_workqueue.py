"""The daemon's work queue on its own: one entry per path with the later due time (unless the
user asks sooner), due items in order, a bound that drops and flags, close, and the batch
take. In-process and quick: the daemon's tests drive it with real files."""

from __future__ import annotations

import threading
import time

import pytest

from credguard.daemon import workqueue
from credguard.daemon.workqueue import Item, WorkQueue

pytestmark = pytest.mark.timeout(30)


def test_due_items_come_out_once_in_order() -> None:
    queue = WorkQueue()
    assert queue.put("/b", "created", 0.05)
    assert queue.put("/a", "created")
    assert queue.put("/a", "modified")  # already waiting: not queued twice (the later put's)
    assert len(queue) == 2
    assert queue.get(timeout=1) == Item("/a", "modified")
    assert queue.get(timeout=1) == Item("/b", "created")
    assert queue.get(timeout=0.05) is None and len(queue) == 0


def test_a_later_put_moves_the_due_time_on_an_earlier_one_does_not() -> None:
    queue = WorkQueue()
    queue.put("/a", "created", 0.3)
    queue.put("/a", "modified", 0.6, attempt=2)  # a writer still at it: settle again
    queue.put("/a", "scan")  # sooner, but not asked: the later time stands
    started = time.monotonic()
    assert queue.get(timeout=2) == Item("/a", "modified", 2)
    assert time.monotonic() - started >= 0.5


def test_sooner_brings_a_waiting_path_forward_and_never_back() -> None:
    queue = WorkQueue()
    queue.put("/a", "delay", 60)
    assert queue.put("/a", "forced", sooner=True)
    assert queue.get(timeout=1) == Item("/a", "forced")
    queue.put("/b", "created", 0.2)
    queue.put("/b", "delay", 60, sooner=True)
    assert queue.get(timeout=2) == Item("/b", "created")
    queue.put("/c", "created", 0.1)
    queue.put("/c", "again", 0.1, sooner=True)  # the same time: the first stays
    assert queue.get(timeout=2) == Item("/c", "created")


def test_a_full_queue_drops_new_paths_and_says_so() -> None:
    queue = WorkQueue(bound=2)
    assert queue.put("/a", "x") and queue.put("/b", "x")
    assert queue.put("/a", "x", 1)  # a path already in it still moves
    assert not queue.put("/c", "x")
    assert queue.take_overflow() is True and queue.take_overflow() is False
    assert len(queue) == 2


def test_take_due_takes_only_what_is_due_without_waiting() -> None:
    queue = WorkQueue()
    for name in ("/1", "/2", "/3"):
        queue.put(name, "created")
    queue.put("/later", "created", 30)
    queue.put("/2", "moved", 0)  # superseded entry of /2 in the heap is skipped
    assert [i.path for i in queue.take_due(5)] == ["/1", "/3", "/2"]
    assert queue.take_due(5) == [] and len(queue) == 1
    queue.put("/x", "created")
    queue.put("/y", "created")
    assert len(queue.take_due(1)) == 1 and len(queue) == 2


def test_close_wakes_a_waiter_and_refuses_puts() -> None:
    queue = WorkQueue()
    got: list[Item | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    time.sleep(0.05)
    assert not queue.closed
    queue.close()
    waiter.join(5)
    assert got == [None] and queue.closed
    assert not queue.put("/a", "created")
    assert queue.get(timeout=0) is None


def test_a_waiter_wakes_for_a_new_item() -> None:
    queue = WorkQueue()
    got: list[Item | None] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get(timeout=5)))
    waiter.start()
    time.sleep(0.05)
    queue.put("/a", "created")
    waiter.join(5)
    assert got == [Item("/a", "created")]


def test_a_fresh_queue_has_not_overflowed() -> None:
    assert WorkQueue().take_overflow() is False


def test_two_puts_at_the_same_instant_keep_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither later nor sooner: nothing changes, whether or not sooner was asked."""
    monkeypatch.setattr(workqueue.time, "monotonic", lambda: 100.0)
    queue = WorkQueue()
    queue.put("/a", "created")
    queue.put("/a", "modified")
    queue.put("/a", "forced", sooner=True)
    assert queue.take_due(5) == [Item("/a", "created")]


def test_a_waiter_wakes_when_the_first_item_is_due_not_at_its_timeout() -> None:
    queue = WorkQueue()
    queue.put("/a", "created", 0.2)
    started = time.monotonic()
    assert queue.get(timeout=10) == Item("/a", "created")
    assert time.monotonic() - started < 5  # not the whole timeout
