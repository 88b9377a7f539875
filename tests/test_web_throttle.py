"""The web sign-in throttle keeps its memory bounded (review-web finding 1) and never lets a
stranger sharing an address lock staff with a real link out (finding 3). On a moved clock,
no sleeps; timings are in scripts/bench_throttle.py."""

from __future__ import annotations

from bot.web.signin import Throttle


def moved_clock():
    t = [0.0]
    return t, (lambda: t[0])


def test_hours_of_strangers_tries_leave_the_tables_bounded():
    t, clock = moved_clock()
    th = Throttle(per_minute=30, total_per_minute=600, per_code=10, clock=clock)
    largest = 0
    for minute in range(120):            # two hours at the shared limit, and more refused
        for i in range(700):
            t[0] = minute * 60 + i * 0.08
            th.allow(f"198.51.{minute % 250}.{i % 250}:{i}", f"bogus-{minute}-{i}", valid=lambda: False)
        largest = max(largest, len(th._by), len(th._codes), len(th._all))
    assert largest <= 600                # only allowed tries leave anything, and only for a minute
    t[0] += 60                           # a quiet minute later everything is forgotten
    assert th.allow("203.0.113.1", "one-more", valid=lambda: False)
    assert (len(th._by), len(th._codes), len(th._all)) == (1, 1, 1)


def test_a_refused_try_creates_nothing():
    t, clock = moved_clock()
    th = Throttle(per_minute=30, total_per_minute=5, per_code=10, clock=clock)
    for i in range(5):
        assert th.allow(f"10.0.0.{i}", f"c{i}", valid=lambda: False)
    for i in range(100):                 # the shared limit is reached: refused, and nothing kept
        assert not th.allow(f"10.1.0.{i}", f"d{i}", valid=lambda: False)
    assert (len(th._by), len(th._codes), len(th._all)) == (5, 5, 5)


def test_the_tables_have_a_hard_cap_that_real_links_pass():
    t, clock = moved_clock()
    th = Throttle(per_minute=30, total_per_minute=10**6, per_code=10, clock=clock, max_keys=50)
    for i in range(50):
        assert th.allow(f"10.0.0.{i}", f"c{i}", valid=lambda: False)
    assert not th.allow("10.9.9.9", "new-code", valid=lambda: False)        # full: a new key waits
    assert not th.allow("10.0.0.1", "another-new-code", valid=lambda: False)  # a new code, too
    assert th.allow("10.0.0.1", "c1", valid=lambda: False)                  # known ones go on
    assert th.allow("10.9.9.9", "real-link", valid=lambda: True)            # a real link passes
    assert len(th._by) == 50 and len(th._codes) == 51                       # one more: a real link
    assert [th.allow(f"10.8.0.{i}", "real-link", valid=lambda: True) for i in range(10)] == [True] * 9 + [False]
    t[0] = 61.0                                                             # a minute on: room again
    assert th.allow("10.9.9.9", "new-code", valid=lambda: False)


def test_a_stranger_at_the_same_address_does_not_lock_out_a_real_link():
    t, clock = moved_clock()
    th = Throttle(per_minute=30, total_per_minute=600, per_code=10, clock=clock)
    shared = "127.0.0.1"                 # a proxy sending no X-Forwarded-For, a council NAT
    assert [th.allow(shared, f"guess-{i}", valid=lambda: False) for i in range(31)] == [True] * 30 + [False]
    assert not th.busy("192.0.2.1") and th.busy(shared)
    assert th.allow(shared, "real-link", valid=lambda: True)                 # staff sign in
    # still within the real link's own limit
    assert [th.allow(shared, "real-link", valid=lambda: True) for _ in range(10)] == [True] * 9 + [False]
    assert not th.allow(shared, "guess-more", valid=lambda: False)          # the stranger still waits
