"""Span and trace ids from a private random generator.

>>> ids = PrivateRandomIdGenerator()
>>> 0 < ids.generate_span_id() < 2**64
True

The SDK's ``RandomIdGenerator`` draws from the process-wide ``random`` module.
Trading code often seeds that module for a reproducible backtest, and order
spans are made on the trading journal's thread (``trading/_journal.py``) at
times that vary from run to run, so every id drawn there would shift the
application's random sequence by a different amount each run. This generator
has its own ``random.Random`` (seeded from ``os.urandom``, reseeded in a forked
child so workers never share ids) and leaves the global sequence alone. The
ids are the same kind: uniformly random, never the invalid all-zero id.
"""

from __future__ import annotations

import os
import random
import weakref

from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

__all__ = ["PrivateRandomIdGenerator"]


class PrivateRandomIdGenerator(RandomIdGenerator):
    def __init__(self) -> None:
        self._random = random.Random()
        self._bits = self._random.getrandbits
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _reseed(ref))

    def generate_span_id(self) -> int:
        span_id = self._bits(64)
        while span_id == 0:
            span_id = self._bits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = self._bits(128)
        while trace_id == 0:
            trace_id = self._bits(128)
        return trace_id


def _reseed(ref: weakref.ref[PrivateRandomIdGenerator]) -> None:
    gen = ref()
    if gen is not None:
        gen._random.seed()
