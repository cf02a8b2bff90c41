"""Live models: bundled or given checkpoints load with their recipe; other sensors are fitted by a stated policy;
a missing bundled checkpoint means events only, said clearly; a bad given checkpoint is named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evstream.live.models import BUNDLED, CheckpointError, bundled_checkpoint, load_live_model
from evstream.outputs import Classification, DepthMap, Detections
from tests.conftest import synthetic_events


@pytest.mark.parametrize("task", sorted(BUNDLED))
def test_missing_bundled_checkpoint_runs_events_only_and_names_the_file(tmp_path, task):
    model, message = load_live_model(task, models_dir=tmp_path)
    assert model is None
    assert str(tmp_path) in message and "showing events only" in message


@pytest.mark.parametrize("task, output, window_us, size", [("gesture", Classification, 400_000, (128, 128)),
                                                           ("detection", Detections, 250_000, (304, 240)),
                                                           ("depth", DepthMap, 50_000, (346, 260))])
def test_bundled_checkpoints_give_their_output_type(task, output, window_us, size, one_torch_thread):
    model, message = load_live_model(task)
    assert model.window_us == window_us and model.input_size[:2] == size and model.fit is None
    assert "the sensor's own" in message
    events = synthetic_events(2000, width=size[0], height=size[1], rate_hz=1e5)
    assert isinstance(model(events), output)


def test_a_model_of_another_sensor_gets_fitted_events(one_torch_thread):
    model, message = load_live_model("gesture", source_size=(346, 260, 2))
    assert "input 128x128 from 346x260 by crop" in message
    seen = []
    inner = model.model
    model.model = lambda events: seen.append(events) or inner(events)
    events = synthetic_events(3000, width=346, height=260, rate_hz=1e5)
    assert isinstance(model(events), Classification)
    assert seen[0]["x"].max() < 128 and seen[0]["y"].max() < 128 and len(seen[0]) > 1000


def test_detections_of_a_fitted_model_come_back_in_source_pixels(one_torch_thread):
    model, message = load_live_model("detection", source_size=(640, 480, 2), fit="resize")
    assert "by resize" in message
    fake = Detections(np.array([[0.0, 0.0, 304.0, 240.0]], np.float32), np.array([0]), np.array([0.9]), ("car",))
    model.model = lambda events: fake
    box = model(synthetic_events(10, width=640, height=480)).boxes_xyxy[0]
    # 640x480 fits 304x240 at scale 0.475 with 6 px bands above and below: the full input maps to the full frame
    np.testing.assert_allclose(box, [0, 0, 640, 480], atol=1e-3)


def test_a_given_checkpoint_that_is_bad_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'missing.pt'}: no such checkpoint file"):
        load_live_model(checkpoint_path=tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(CheckpointError, match=f"{corrupt}: not a readable evstream checkpoint"):
        load_live_model(checkpoint_path=corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match=f"{foreign}: not an evstream checkpoint"):
        load_live_model(checkpoint_path=foreign)
    mismatched = tmp_path / "mismatched.pt"
    info = torch.load(bundled_checkpoint("gesture"), weights_only=True)
    info["model"] = {k: v for k, v in list(info["model"].items())[:-2]}
    torch.save(info, mismatched)
    with pytest.raises(CheckpointError, match=f"{mismatched}: does not fit the SpikingClassifier.*2 weights missing"):
        load_live_model(checkpoint_path=mismatched)
    training = tmp_path / "last.pt"
    torch.save({"epoch": 3, "model": info["model"]}, training)
    with pytest.raises(CheckpointError, match=f"{training}: a training checkpoint, not a live one"):
        load_live_model(checkpoint_path=training)


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="unknown live task"):
        load_live_model("segmentation")
