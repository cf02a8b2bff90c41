"""Rendering by pixels: event colours and decay, depth colours and colour bar, boxes and their labels,
class bars, video files."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from evstream import make_events
from evstream.viz.headless import VideoSink, save_png
from evstream.viz.render import (BACKGROUND_RGB, DEPTH_LUT, OFF_RGB, ON_RGB, EventImage, bar_rgb, class_bars,
                                 class_history_rgb, class_rgb, depth_colour_bar, depth_position, depth_rgb, depth_ticks,
                                 draw_boxes, place_labels)


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
    image.reset()
    assert (image.rgb() == BACKGROUND_RGB.astype(np.uint8)).all()


def test_event_image_blend_matches_its_numpy_formula():
    rng = np.random.default_rng(0)
    image = EventImage(37, 23)
    image.on[...] = rng.random((23, 37), dtype=np.float32) * (rng.random((23, 37)) < 0.5)
    image.off[...] = rng.random((23, 37), dtype=np.float32)
    on, off = image.on[..., None], image.off[..., None]
    expected = BACKGROUND_RGB + on * (ON_RGB - BACKGROUND_RGB) + off * (1 - on) * (OFF_RGB - BACKGROUND_RGB)
    got = image.rgb().astype(int)
    assert np.abs(got - np.clip(expected, 0, 255).astype(np.uint8).astype(int)).max() <= 1  # float32 vs float64


def test_depth_rgb_matches_the_lookup_table_formula():
    depth = np.array([[2.0, 60.0, np.nan, 0.0], [0.5, 80.0, 100.0, np.inf]], np.float32)
    rgb = depth_rgb(depth, d_max=80.0)
    assert rgb[0, 2].tolist() == [0, 0, 0] and rgb[0, 3].tolist() == [0, 0, 0] and rgb[1, 3].tolist() == [0, 0, 0]
    for (y, x), d in (((0, 0), 2.0), ((0, 1), 60.0), ((1, 0), 1.0), ((1, 1), 80.0), ((1, 2), 80.0)):
        index = round((1 - math.log(d / 1.0) / math.log(80.0)) * 255)
        assert rgb[y, x].tolist() == DEPTH_LUT[index].tolist()
    assert rgb[0, 0].sum() > rgb[0, 1].sum()  # near is brighter
    with pytest.raises(ValueError, match="depth map"):
        depth_rgb(np.zeros(4))


def test_depth_colour_bar_and_ticks_use_the_same_scale():
    ticks = depth_ticks(d_max=40.0)
    assert [label for _, label in ticks] == ["1 m", "2 m", "5 m", "10 m", "20 m", "40 m"]
    for position, label in ticks:
        assert position == pytest.approx(float(depth_position(float(label[:-2]), d_max=40.0)))
    bar = depth_colour_bar(256, 3)
    assert bar.shape == (256, 3, 3)
    assert bar[-1, 0].tolist() == depth_rgb(np.array([[1.0]]), d_max=40.0)[0, 0].tolist()  # bottom: near
    assert bar[0, 0].tolist() == depth_rgb(np.array([[40.0]]), d_max=40.0)[0, 0].tolist()  # top: far


def _overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_labels_sit_above_their_box_inside_the_frame_and_never_overlap():
    boxes = np.array([[50, 30, 90, 60],  # room above: label above the top-left corner
                      [10, 0, 40, 20],  # at the top edge: inside the box
                      [52, 31, 92, 61],  # the same place as the first, lower score
                      [270, 200, 300, 240]])  # bottom-right corner
    sizes = np.array([[30, 10]] * 4)
    spots = place_labels(boxes, sizes, (300, 240), scores=np.array([0.9, 0.8, 0.5, 0.7]))
    assert spots[0] == (50, 20) and spots[1] == (10, 0) and spots[3] == (270, 190)
    assert spots[2] is not None and spots[2] != (52, 21)  # the place above is taken: the next free one
    rects = [(x, y, 30, 10) for x, y in spots]
    for k, (x, y, w, h) in enumerate(rects):
        assert 0 <= x and x + w <= 300 and 0 <= y and y + h <= 240
        assert not any(_overlap(rects[k], other) for other in rects[k + 1:])
    assert place_labels(boxes[:1], [[400, 10]], (300, 240)) == [None]  # wider than the frame: no label


def test_many_crowded_labels_never_overlap():
    rng = np.random.default_rng(1)
    x0, y0 = rng.uniform(0, 280, 40), rng.uniform(0, 220, 40)
    boxes = np.stack([x0, y0, x0 + 20, y0 + 20], axis=1)
    spots = place_labels(boxes, np.full((40, 2), [40.0, 9.0]), (304, 240), rng.random(40))
    rects = [(x, y, 40.0, 9.0) for x, y in filter(None, spots)]
    assert len(rects) >= 10
    assert not any(_overlap(a, b) for i, a in enumerate(rects) for b in rects[i + 1:])
    assert all(0 <= x <= 264 and 0 <= y <= 231 for x, y, _, _ in rects)


def test_boxes_are_drawn_where_they_are_in_their_class_colour():
    img = np.zeros((60, 80, 3), np.uint8)
    out = draw_boxes(img, np.array([[10, 20, 50, 40]]), np.array([1]), np.array([0.9]), ("car", "person"))
    assert out[30, 10].tolist() == list(class_rgb(1)) and out[30, 50].tolist() == list(class_rgb(1))
    assert out[40, 30].tolist() == list(class_rgb(1))
    assert not out[30, 30].any() and not img.any()
    assert (out[:20, 10:20] == class_rgb(1)).all(axis=-1).sum() > 20  # the filled label above the box
    scaled = draw_boxes(np.zeros((120, 160, 3), np.uint8), np.array([[10, 20, 50, 40]]), np.array([0]),
                        np.array([0.9]), ("car",), scale=2.0)
    assert scaled[60, 20].tolist() == list(class_rgb(0)) and scaled[60, 100].tolist() == list(class_rgb(0))


def test_class_bars_and_history_use_the_class_colours():
    bars = class_bars(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"), width=320, row=18)
    assert bars.shape == (3 * 18 + 4, 320, 3)
    row_of = [2 + k * 18 + 9 for k in range(3)]
    assert (bars[row_of[1]] == bar_rgb(1, True)).all(axis=-1).sum() > 100  # 0.7 of the bar width
    assert (bars[row_of[0]] == bar_rgb(0, False)).all(axis=-1).sum() > 10
    assert bar_rgb(1, True) == class_rgb(1) and sum(bar_rgb(0, False)) < sum(class_rgb(0))
    history = class_history_rgb(np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]))
    assert history.shape == (3, 2, 3)
    assert history[0, 0].tolist() == list(class_rgb(0)) and history[1, 0].tolist() == BACKGROUND_RGB.astype(int).tolist()


def test_png_and_video_files(tmp_path):
    bars = class_bars(np.array([0.1, 0.7, 0.2]), ("a", "b", "c"))
    save_png(tmp_path / "bars.png", bars)
    assert cv2.imread(str(tmp_path / "bars.png")).shape == bars.shape
    with VideoSink(tmp_path / "v.mp4", fps=10) as sink:
        for k in range(5):
            sink.write(np.full((48, 64, 3), 40 * k, np.uint8))
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    capture.release()
