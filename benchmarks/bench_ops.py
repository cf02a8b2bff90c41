"""Every evstream.ops kernel beside its peers in one run: representations (tonic, spikingjelly,
evlib) and filters (tonic, dv-processing), each against a plain copy of the same bytes.

    python benchmarks/bench_ops.py [--events 10000000] [--repeat 3]
"""

from __future__ import annotations

import sys

import bench_ops_filters
import bench_ops_repr

if __name__ == "__main__":
    bench_ops_repr.main()
    bench_ops_filters.main()
    sys.exit(0)
