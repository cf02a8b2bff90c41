"""The live loop runs the stateful filters as streams: chunked == whole within a pass, a fresh start at each pass
end, one StreamResetWarning per unannounced jump back (a seek)."""

from __future__ import annotations

import numpy as np
import pytest

from evstream.events import concat_events
from evstream.live.pipeline import Pipeline
from evstream.ops import BackgroundActivityFilter, Denoise, HotPixelFilter, RefractoryPeriod, StreamResetWarning
from tests.conftest import synthetic_events
from tests.live.test_pipeline import BatchSource, _batches, _run_to_end

SIZE = (346, 260, 2)


def filters():
    return [Denoise(SIZE, filter_time=3000), RefractoryPeriod(SIZE, refractory_period=200),
            BackgroundActivityFilter(SIZE, duration_us=5000), HotPixelFilter(SIZE, learn_us=3000, contrast=2.0)]


def filtered(events):
    """What the filters give on one whole recording, as transforms."""
    for f in filters():
        events = f(events)
    return events


def test_filters_carry_state_across_batches_and_start_afresh_each_pass():
    events = synthetic_events(40_000, rate_hz=2e6)  # 20 ms, played twice as a looping replay does
    first, second = _batches(events), _batches(events)
    first[-1] = (*first[-1], True)  # the replay marks a pass's last batch
    pipeline = Pipeline(BatchSource(first + second), window_us=5000, max_lag_ms=1e9, filters=filters())
    seen = _run_to_end(pipeline)  # a StreamResetWarning would be an error here (pytest's filterwarnings)
    expected = filtered(events)
    assert 0 < len(expected) < len(events) // 2
    for sequence in (0, 1):
        kept = concat_events([r.events for r in seen if r.sequence == sequence])
        np.testing.assert_array_equal(kept, expected)


def test_a_jump_back_without_a_pass_end_resets_each_filter_with_a_warning():
    events = synthetic_events(20_000, rate_hz=2e6)
    restart = events[events["t"] >= events["t"][5000]]  # a seek back into the middle of the recording
    pipeline = Pipeline(BatchSource(_batches(events) + _batches(restart)), window_us=5000, max_lag_ms=1e9,
                        filters=filters())
    with pytest.warns(StreamResetWarning) as caught:
        seen = _run_to_end(pipeline)
    assert sorted(str(w.message).split(" stream")[0] for w in caught) == [
        "BackgroundActivityFilter", "Denoise", "HotPixelFilter", "RefractoryPeriod"]
    np.testing.assert_array_equal(concat_events([r.events for r in seen if r.sequence == 1]), filtered(restart))
