"""The ``evstream simulate`` subcommand: synthetic datasets (road, depth, gesture) and video to events."""

from __future__ import annotations

import argparse

from evstream.sim.depth_scene import write_depth_dataset, write_depth_sequence
from evstream.sim.emulator import PRESETS
from evstream.sim.gesture import write_gesture_dataset
from evstream.sim.road import write_road_dataset
from evstream.sim.video import video_to_events


def _road(args) -> int:
    paths = write_road_dataset(args.out, seconds=args.seconds, seed=args.seed, fps=args.fps, box_hz=args.box_hz,
                               sequences=tuple(args.sequences), sensor=args.sensor)
    print(f"wrote {len(paths)} Gen1 clips under {args.out}")
    return 0


def _depth(args) -> int:
    if args.sequences == 1:
        data, gt = write_depth_sequence(args.out, name=args.name, seconds=args.seconds, seed=args.seed, fps=args.fps,
                                        sensor=args.sensor)
        print(f"wrote {data} and {gt}")
        return 0
    paths = write_depth_dataset(args.out, sequences=args.sequences, name=args.name, seconds=args.seconds,
                                seed=args.seed, fps=args.fps, sensor=args.sensor)
    print(f"wrote {len(paths)} MVSEC-layout sequences {paths[0][0].name[:-len('_data.hdf5')]} .. "
          f"{paths[-1][0].name[:-len('_data.hdf5')]} under {args.out}")
    return 0


def _gesture(args) -> int:
    paths = write_gesture_dataset(args.out, users=args.users, test_users=args.test_users, seconds=args.seconds,
                                  seed=args.seed, fps=args.fps)
    print(f"wrote {len(paths)} DVS128 Gesture trials under {args.out}")
    return 0


def _video(args) -> int:
    n = video_to_events(args.file, args.out, sensor=args.sensor, seed=args.seed, format=args.format)
    print(f"wrote {n} events to {args.out}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _common(parser: argparse.ArgumentParser, *, seconds: float, fps: float, seconds_help: str,
            sensor: bool = True) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seconds", type=float, default=seconds, help=seconds_help)
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole set (same seed, same events)")
    parser.add_argument("--fps", type=float, default=fps, help="rendering rate; crossings are interpolated")
    if sensor:
        parser.add_argument("--sensor", choices=sorted(PRESETS), default="clean", help="emulator preset")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``simulate road|depth|gesture|video`` to a CLI's subparsers; each sets ``run(args) -> exit code``."""
    simulate = subparsers.add_parser("simulate", help="synthetic event datasets and video-to-events conversion",
                                     description="Synthetic event datasets in the real datasets' layouts, "
                                                 "and video files converted to events.")
    kinds = simulate.add_subparsers(dest="scene", required=True)

    road = kinds.add_parser("road", help="cars and pedestrians with boxes, Prophesee Gen1 layout (304x240)")
    _common(road, seconds=4.0, fps=200.0, seconds_help="length of each clip (s)")
    road.add_argument("--sequences", type=int, nargs=3, default=(1, 1, 1), metavar=("TRAIN", "VAL", "TEST"),
                      help="clips per split")
    road.add_argument("--box-hz", type=float, default=4.0, help="box rate, 1-4 Hz")
    road.set_defaults(run=_road)

    depth = kinds.add_parser("depth", help="camera flying down a corridor with depth at 20 Hz, MVSEC layout (346x260); "
                                           "each seed draws its own corridor, camera path and objects")
    _common(depth, seconds=3.0, fps=200.0, seconds_help="length of each sequence (s)")
    depth.add_argument("--name", default="sim_corridor1",
                       help="sequence name: <name>_data.hdf5, <name>_gt.hdf5 (with --sequences N: <name>_000 ...)")
    depth.add_argument("--sequences", type=_positive_int, default=1,
                       help="sequences to write; N > 1 names them <name>_000 .. and seeds sequence k with "
                            "seed * 1000 + k (1: one sequence <name> with the seed itself)")
    depth.set_defaults(run=_depth)

    gesture = kinds.add_parser("gesture", help="the 11 DVS128 Gesture classes, DVS128 Gesture layout (128x128)")
    _common(gesture, seconds=2.0, fps=250.0, seconds_help="length of each gesture (s)", sensor=False)
    gesture.add_argument("--users", type=int, default=4, help="subjects (one trial each)")
    gesture.add_argument("--test-users", type=int, default=1, help="subjects listed in trials_to_test.txt")
    gesture.set_defaults(run=_gesture)

    video = kinds.add_parser("video", help="convert a video file into events")
    video.add_argument("file", help="video file OpenCV can read")
    video.add_argument("--out", required=True, help="event file; format from its suffix (.h5, .dat, .raw, ...)")
    video.add_argument("--format", default=None, help="output format name, overriding the suffix")
    video.add_argument("--seed", type=int, default=0, help="seed of the emulator")
    video.add_argument("--sensor", choices=sorted(PRESETS), default="clean", help="emulator preset")
    video.set_defaults(run=_video)
    return simulate
