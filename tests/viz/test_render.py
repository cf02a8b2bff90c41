"""Rendering by pixels: event colours and decay, depth colours, boxes, video files."""

from __future__ import annotations

import cv2
import numpy as np

from evstream import make_events
from evstream.viz.headless import VideoSink, save_png
from evstream.viz.render import BACKGROUND_RGB, OFF_RGB, ON_RGB, EventImage, class_bars, depth_rgb, draw_boxes


def test_event_image_colours_and_decay():
    image = EventImage(8, 6, tau_us=1000.0)
    image.update(make_events([1, 5], [2, 3], [0, 0], [1, 0]), dt_us=0)
    rgb = image.rgb()
    np.testing.assert_array_equal(rgb[2, 1], ON_RGB.astype(np.uint8))
    np.testing.assert_array_equal(rgb[3, 5], OFF_RGB.astype(np.uint8))
    np.testing.assert_array_equal(rgb[0, 0], BACKGROUND_RGB.astype(np.uint8))
    image.update(make_events([], [], [], []), dt_us=1000.0)  # one time constant: 1/e of the way back
    expected = BACKGROUND_RGB + np.exp(-1) * (ON_RGB - BACKGROUND_RGB)
    np.testing.assert_allclose(image.rgb()[2, 1], expected, atol=1)


def test_depth_rgb_marks_missing_depth_black_and_near_brighter():
    depth = np.array([[2.0, 60.0, np.nan]])
    rgb = depth_rgb(depth)
    assert rgb[0, 2].tolist() == [0, 0, 0]
    assert rgb[0, 0].sum() > rgb[0, 1].sum()


def test_boxes_are_drawn_where_they_are():
    img = np.zeros((60, 80, 3), np.uint8)
    out = draw_boxes(img, np.array([[10, 20, 50, 40]]), np.array([0]), np.array([0.9]), ("car",))
    assert out[20, 30].any() and out[40, 30].any() and out[30, 10].any() and out[30, 50].any()
    assert not out[30, 30].any() and not img.any()


def test_class_bars_and_files(tmp_path):
    bars = class_bars(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"))
    assert bars.shape[0] == 3 * 18 + 4
    save_png(tmp_path / "bars.png", bars)
    assert cv2.imread(str(tmp_path / "bars.png")).shape == bars.shape
    with VideoSink(tmp_path / "v.mp4", fps=10) as sink:
        for k in range(5):
            sink.write(np.full((48, 64, 3), 40 * k, np.uint8))
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
