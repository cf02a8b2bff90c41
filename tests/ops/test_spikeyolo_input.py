"""SpikeYOLO Gen1 input: last-polarity images on 127, the 250 ms window, 3 channels, letterbox to stride 32."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from evstream import EVENT_DTYPE, make_events
from evstream.ops import ToSpikeYOLOInput, last_polarity_frames, letterbox_geometry, to_spikeyolo_input
from tests.conftest import synthetic_events

GEN1 = (304, 240, 2)


def test_last_polarity_wins_on_a_127_background():
    events = make_events([5, 5, 6, 6, 9], [2, 2, 3, 3, 0], [0, 10, 20, 30, 60], [1, 0, 0, 1, 1])
    images = last_polarity_frames(events, (10, 4, 2), start_time=0, n_time_bins=2, dt_us=50)
    assert images.shape == (2, 4, 10) and images.dtype == np.uint8
    assert images[0, 2, 5] == 0 and images[0, 3, 6] == 255  # later events overwrite earlier ones
    assert images[1, 0, 9] == 255
    assert (images == 127).sum() == 2 * 40 - 3


def test_window_is_the_250_ms_before_the_label():
    label = 1_000_000
    events = make_events([1, 2, 3, 4], [1, 1, 1, 1], [label - 250_001, label - 250_000, label - 125_001, label],
                         [1, 1, 0, 1])
    frames, _ = to_spikeyolo_input(events, (8, 4, 2), label, n_time_bins=2, imgsz=8, stride=4)
    assert frames.shape == (2, 3, 4, 8)
    assert frames[0, 0, 1].tolist() == [127, 127, 255, 0, 127, 127, 127, 127]  # t = label - 250 ms is in, before is out
    assert (frames[1] == 127).all()  # t = label is out


def test_gen1_letterbox_geometry():
    box = letterbox_geometry(GEN1, imgsz=320, stride=32)
    assert (box.height, box.width, box.pad_left, box.pad_top) == (256, 320, 0, 1)
    assert box.scale_x == 320 / 304 and box.scale_y == 253 / 240
    boxes = np.array([[0.0, 0.0, 304.0, 240.0], [10.0, 20.0, 50.0, 60.0]])
    np.testing.assert_allclose(box.boxes_to_image(boxes)[0], [0, 1, 320, 254])
    np.testing.assert_allclose(box.boxes_to_sensor(box.boxes_to_image(boxes)), boxes)


def test_gen1_frames_are_resized_padded_and_three_identical_channels():
    """The official Gen1 ``load_image``: ``cv2.resize(im[t], (w, h), interpolation=cv2.INTER_LINEAR)`` per bin."""
    events = synthetic_events(40_000, width=304, height=240, seed=0, rate_hz=1e5)
    label = int(events["t"][-1])
    frames, box = to_spikeyolo_input(events, GEN1, label, n_time_bins=2)
    assert frames.shape == (2, 3, 256, 320) and frames.dtype == np.uint8
    assert (frames[:, :, 0] == 114).all() and (frames[:, :, 254:] == 114).all()  # 1 row on top, 2 below
    assert (frames[:, 1] == frames[:, 0]).all() and (frames[:, 2] == frames[:, 0]).all()
    images = last_polarity_frames(events, GEN1, label - 250_000, 2, 125_000)
    for image, frame in zip(images, frames, strict=True):
        np.testing.assert_array_equal(frame[0, 1:254], cv2.resize(image, (320, 253), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(ToSpikeYOLOInput(GEN1)(events, label)[0], frames)
    area, _ = to_spikeyolo_input(events, GEN1, label, n_time_bins=2, resize="area")  # the earlier evstream resize
    for image, frame in zip(images, area, strict=True):
        np.testing.assert_array_equal(frame[0, 1:254], cv2.resize(image, (320, 253), interpolation=cv2.INTER_AREA))
    assert 0.01 < (area != frames).mean() < 0.5  # upscaling 304 -> 320: the two differ on a few per cent of pixels


def test_linear_resize_hand_case():
    """Bilinear upscaling 2 -> 4 pixels (OpenCV's half-pixel centres): 0, 255 -> 0, 64, 191, 255."""
    events = make_events([1], [0], [50], [1])  # one ON event at x = 1 of a 2x1 sensor; x = 0 stays 127
    frames, _ = to_spikeyolo_input(events, (2, 1, 2), 100, n_time_bins=1, window_us=100, imgsz=4, stride=1)
    assert frames.shape == (1, 3, 2, 4)
    assert frames[0, 0, 0].tolist() == [127, 159, 223, 255]  # 127 + (255 - 127) * (0, 0.25, 0.75, 1)


def test_unknown_resize_is_one_line_error():
    with pytest.raises(ValueError, match="unknown resize 'cubic'; one of linear, area"):
        to_spikeyolo_input(np.empty(0, EVENT_DTYPE), GEN1, 10_000, resize="cubic")


def test_empty_window_is_background_only():
    frames, _ = to_spikeyolo_input(np.empty(0, EVENT_DTYPE), GEN1, 10_000_000, n_time_bins=4)
    assert frames.shape == (4, 3, 256, 320)
    assert (frames[:, :, 1:254] == 127).all()
