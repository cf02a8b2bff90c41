"""The house numba decorator (every kernel nopython, GIL released, build cached) and a prefetch hint."""

from __future__ import annotations

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

kernel = numba.njit(cache=True, nogil=True)
"""Decorate a private kernel: ``@kernel`` compiles it nopython, with ``nogil=True`` and ``cache=True``."""
inline_kernel = numba.njit(cache=True, nogil=True, inline="always")
"""A kernel body inlined into its callers, so arguments they pass as constants fold away (for
variants of one loop, e.g. with and without prefetching)."""
PREFETCH_AHEAD = 32
"""Events ahead that the scatter kernels prefetch (the voxel grid always, count frames from
:data:`PREFETCH_MIN_BYTES`)."""
PREFETCH_MIN_BYTES = 4 << 20
"""Count frames of 4 MiB and more prefetch (1280x720x2 float frames); smaller ones stay in cache,
where the extra instructions per event cost more than the prefetch saves."""


@intrinsic
def prefetch_for_write(typingctx, array, index):
    """``prefetch_for_write(array, index)``: ask the CPU to fetch the cache line of element ``index`` of the
    C-contiguous ``array`` (flat index, any ndim) for writing (``llvm.prefetch``: no effect on values,
    an index out of range is harmless).

    Scatter kernels issue it a few dozen events ahead, so their random read-modify-writes on planes
    beyond L2 overlap instead of waiting on the cache one by one.
    """

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        address = builder.bitcast(builder.gep(data, [args[1]]), cgutils.voidptr_t)
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32]), "llvm.prefetch.p0")
        builder.call(function, [address, i32(1), i32(3), i32(1)])  # write, keep in all cache levels, data
        return context.get_dummy_value()

    if not (isinstance(array, types.Array) and array.layout == "C" and isinstance(index, types.Integer)):
        return None
    return types.void(array, index), codegen
