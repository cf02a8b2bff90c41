"""The bundled live models: each task's checkpoint loads, and a missing one means events only, said clearly."""

from __future__ import annotations

import pytest

from evstream.live.models import LIVE_MODELS, load_live_model
from evstream.outputs import Classification, DepthMap, Detections


@pytest.mark.parametrize("task", sorted(LIVE_MODELS))
def test_missing_checkpoint_runs_events_only_and_names_the_file(tmp_path, task):
    model, window_us, message = load_live_model(task, models_dir=tmp_path)
    assert model is None and window_us is None
    assert str(tmp_path) in message and "showing events only" in message


@pytest.mark.parametrize("task, output, window_us", [("gesture", Classification, 400_000),
                                                     ("detection", Detections, 250_000),
                                                     ("depth", DepthMap, 50_000)])
def test_bundled_checkpoints_give_their_output_type(task, output, window_us, one_torch_thread):
    from tests.conftest import synthetic_events

    model, window, _ = load_live_model(task)
    assert window == window_us
    events = synthetic_events(2000, width=128, height=128, rate_hz=1e5)
    assert isinstance(model(events), output)


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown live task"):
        load_live_model("segmentation")
