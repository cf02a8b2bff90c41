"""Benchmark: a 4-conv LIF net in evstream.snn beside spikingjelly and snntorch, eager and compiled.

Net (same for every library): 4 x [conv 3x3 (pad 1) -> BN -> LIF (tau 2, V_th 1, hard reset
to 0, detach_reset) -> max-pool 2], channels 32-64-128-256, input [T, B, 2, 128, 128],
followed by a mean over T and space. Inference (``torch.inference_mode``), ms per sample =
best time per call / B over interleaved rounds, all libraries in the same process and run
(the median is printed too: on a shared machine the spread is the noise).

- evstream (like-for-like): ``SeqConv2d``/``SeqBatchNorm2d``/``Spiking(LIF)``/``SeqMaxPool2d``, the
  same graph, memory format and arithmetic as spikingjelly's net.
- evstream-opt (NOT like-for-like): the same net after the library's inference preparation,
  :func:`evstream.snn.fuse.fuse_conv_bn` (BN folded into the conv) and channels_last
  weights and input (the conversion is inside the timed call). Both are plain torch
  features; ``spikingjelly-opt`` applies the same two to spikingjelly's net for a fair view.

- spikingjelly: ``layer.Conv2d``/``BatchNorm2d``/``MaxPool2d`` and ``neuron.LIFNode`` in multi-step
  mode (its CPU torch path), ``functional.reset_net`` before every call.
- snntorch: the same conv/BN/pool on the T * B batch and ``snn.Leaky`` (beta 0.5, reset
  "zero") stepped over T per layer. Its neuron is not decay_input, so its spikes differ; the
  work per step is the same.
- ``--compile`` adds ``torch.compile`` (default mode, ``dynamic=False``: every shape gets its own
  static kernels) of each whole net; the first call compiles (seconds to minutes per shape on a
  loaded machine), it is excluded from the timing.

glibc malloc trap: with the default allocator, activations above the mmap threshold are
mapped and unmapped on every call (one T=16, B=16 call measured 4.8 s instead of 1.7 s).
Run with ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184``
(or jemalloc via LD_PRELOAD). This script re-executes itself with that setting unless
``GLIBC_TUNABLES`` is already set or ``--no-malloc-tune`` is given.

Usage:
    python benchmarks/bench_snn.py --quick            # T = 4, B = 1, eager + compile
    python benchmarks/bench_snn.py --compile          # T = 4, 8, 16 x B = 1, 16, eager + compile
    python benchmarks/bench_snn.py                    # full grid, eager only
    python benchmarks/bench_snn.py --modes compile --ts 4,8 --bs 1 --threads 1   # any sub-grid
    python benchmarks/bench_snn.py --compile --threads 1 --clock cpu   # steadiest on a shared machine
"""

from __future__ import annotations

import argparse
import os
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=17179869184"
CHANNELS = (32, 64, 128, 256)


def build_evstream():
    from torch import nn

    from evstream.snn import LIF, SeqBatchNorm2d, SeqConv2d, SeqMaxPool2d, Spiking

    layers, c_in = [], 2
    for c in CHANNELS:
        layers += [SeqConv2d(c_in, c, 3, padding=1, bias=False), SeqBatchNorm2d(c),
                   Spiking(LIF(tau=2.0, detach_reset=True)), SeqMaxPool2d(2)]
        c_in = c
    net = nn.Sequential(*layers).eval()
    return lambda x: net(x).mean(dim=(0, 3, 4)), net


def build_spikingjelly():
    from spikingjelly.activation_based import functional, layer, neuron
    from torch import nn

    layers, c_in = [], 2
    for c in CHANNELS:
        layers += [layer.Conv2d(c_in, c, 3, padding=1, bias=False, step_mode="m"), layer.BatchNorm2d(c, step_mode="m"),
                   neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m"), layer.MaxPool2d(2, step_mode="m")]
        c_in = c
    net = nn.Sequential(*layers).eval()

    def run(x):
        functional.reset_net(net)
        return net(x).mean(dim=(0, 3, 4))
    return run, net


def build_snntorch():
    import snntorch as snn
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs, self.bns, self.lifs, c_in = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), 2
            for c in CHANNELS:
                self.convs.append(nn.Conv2d(c_in, c, 3, padding=1, bias=False))
                self.bns.append(nn.BatchNorm2d(c))
                self.lifs.append(snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero"))
                c_in = c
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            t, b = x.shape[:2]
            for conv, bn, lif in zip(self.convs, self.bns, self.lifs):
                cur = bn(conv(x.flatten(0, 1))).unflatten(0, (t, b))
                mem = torch.zeros_like(cur[0])
                spikes = []
                for step in range(t):
                    spk, mem = lif(cur[step], mem)
                    spikes.append(spk)
                x = self.pool(torch.stack(spikes).flatten(0, 1)).unflatten(0, (t, b))
            return x.mean(dim=(0, 3, 4))

    net = Net().eval()
    return net, net


def optimised(build):
    """Fold BN into the conv and switch to channels_last (evstream's inference preparation)."""
    def make():
        import torch

        from evstream.snn.fuse import fuse_conv_bn

        run, net = build()
        fuse_conv_bn(net, inplace=True).to(memory_format=torch.channels_last)

        def run_cl(x):
            t, b = x.shape[:2]
            return run(x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (t, b)))
        return run_cl, net
    return make


BUILDERS = {"evstream": build_evstream, "evstream-opt": optimised(build_evstream),
            "spikingjelly": build_spikingjelly, "spikingjelly-opt": optimised(build_spikingjelly),
            "snntorch": build_snntorch}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_calls(fns: dict, x, reps: int, clock=time.perf_counter) -> dict:
    """Sorted times per call of each function (s); libraries interleaved round by round in a rotating
    order, so load changes on a shared machine hit them alike; the minimum is the least disturbed run."""
    import torch

    times = {}
    with torch.inference_mode():
        for name, fn in fns.items():
            fn(x)
            fn(x)
            times[name] = []
        names = list(fns)
        for r in range(reps):
            for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
                fn = fns[name]
                t0 = clock()
                fn(x)
                times[name].append(clock() - t0)
    return {name: sorted(ts) for name, ts in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 4, B = 1 only, eager and compiled")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default); on a "
                        "loaded machine 1 avoids OpenMP oversubscription")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--freezing", action="store_true", help="compile with Inductor's freezing option "
                        "(weights as constants, BN folded, prepacked mkldnn convs) for every library")
    parser.add_argument("--modes", default=None, help="comma-separated subset of eager,compile (overrides "
                        "--quick/--compile)")
    parser.add_argument("--ts", default=None, help="comma-separated time steps (default 4,8,16; 4 with --quick)")
    parser.add_argument("--bs", default=None, help="comma-separated batch sizes (default 1,16; 1 with --quick)")
    parser.add_argument("--no-malloc-tune", action="store_true", help="keep the default glibc malloc settings")
    parser.add_argument("--reps", type=int, default=7, help="timed rounds per case (best is kept)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time, or this process's "
                        "CPU time (with --threads 1 on a loaded machine: time spent waiting for a core is not counted)")
    parser.add_argument("--libs", default="evstream,evstream-opt,spikingjelly,snntorch",
                        help=f"comma-separated, from {', '.join(BUILDERS)}")
    args = parser.parse_args(argv)
    if not args.no_malloc_tune and "GLIBC_TUNABLES" not in os.environ:
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "GLIBC_TUNABLES": TUNABLES})

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ts = (4,) if args.quick else (4, 8, 16)
    bs = (1,) if args.quick else (1, 16)
    modes = ("eager", "compile") if args.quick or args.compile else ("eager",)
    ts = tuple(int(v) for v in args.ts.split(",")) if args.ts else ts
    bs = tuple(int(v) for v in args.bs.split(",")) if args.bs else bs
    modes = tuple(args.modes.split(",")) if args.modes else modes
    libs = args.libs.split(",")
    if not set(modes) <= {"eager", "compile"} or not set(libs) <= set(BUILDERS):
        parser.error(f"unknown mode or library in {modes} / {libs}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, clock {args.clock}, GLIBC_TUNABLES="
          f"{os.environ.get('GLIBC_TUNABLES', '(default)')}, compile options "
          f"{ {'freezing': True} if args.freezing else 'default'}")
    header = " ".join(f"{lib:>16}" for lib in libs)
    pairs = [(ref, ours) for ref in ("spikingjelly", "snntorch") for ours in ("evstream", "evstream-opt")
             if ref in libs and ours in libs]
    if "spikingjelly-opt" in libs and "evstream-opt" in libs:
        pairs.append(("spikingjelly-opt", "evstream-opt"))
    print("ms per sample: best (median) of the timed rounds; ratio = reference / ours, > 1 means ours is faster")
    print(f"{'mode':<8} {'T':>3} {'B':>3} {header}   " + " ".join(f"{r + '/' + o:>28}" for r, o in pairs))
    cases = [(mode, t, b) for mode in modes for t in ts for b in bs]
    for mode, t, b in cases:
        if mode == "compile" and len(cases) > 1:  # Dynamo's guard building crashed on a 2nd net in one process
            print(_case_in_subprocess(argv, t, b), flush=True)
            continue
        x = (torch.rand(t, b, 2, 128, 128) < 0.1).float() * 2.0
        fns = {lib: BUILDERS[lib]()[0] for lib in libs}
        if mode == "compile":
            options = {"freezing": True} if args.freezing else None
            fns = {lib: torch.compile(fn, dynamic=False, options=options) for lib, fn in fns.items()}
        times = time_calls(fns, x, args.reps, CLOCKS[args.clock])
        best = {lib: ts_[0] * 1e3 / b for lib, ts_ in times.items()}
        med = {lib: ts_[len(ts_) // 2] * 1e3 / b for lib, ts_ in times.items()}
        cells = " ".join(f"{f'{best[lib]:.1f} ({med[lib]:.0f})':>16}" for lib in libs)
        ratios = " ".join(f"{best[r] / best[o]:>28.2f}" for r, o in pairs)
        print(f"{mode:<8} {t:>3} {b:>3} {cells}   {ratios}", flush=True)


def _case_in_subprocess(argv, t: int, b: int) -> str:
    """The result row of one compiled case, run in a fresh interpreter with the same options."""
    import subprocess

    args = list(sys.argv[1:] if argv is None else argv)
    for flag in ("--quick", "--compile"):
        args = [a for a in args if a != flag]
    for flag in ("--modes", "--ts", "--bs"):
        while flag in args:
            i = args.index(flag)
            del args[i:i + 2]
    command = [sys.executable, os.path.abspath(__file__), *args, "--modes", "compile", "--ts", str(t), "--bs", str(b)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    rows = [line for line in done.stdout.splitlines() if line.startswith("compile")]
    return rows[-1] if done.returncode == 0 and rows else f"compile  {t:>3} {b:>3} failed: {done.stderr[-300:]}"


if __name__ == "__main__":
    main()
