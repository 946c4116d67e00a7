"""The network over many examples in chunks, each example's output the same bits however it is chunked.

The conv stack runs in cache-sized chunks (:data:`warblr.embed.CPU_CONV_CHUNK`
in float32, :data:`warblr.quantize.INT8_CHUNK` in int8), and a clip's
examples fall into batches and chunks with other clips' examples as the
files arrive. Items must not depend on that: a chunk never holds a lone
example (see :func:`run_in_chunks`).
"""

from __future__ import annotations

import torch

__all__ = ["conv_chunks", "run_in_chunks"]


def conv_chunks(count, chunk):
    """``[(start, stop)]``: ``count`` examples in chunks of ``chunk``, the last one merged if it would hold one.

    Examples
    --------
    >>> conv_chunks(33, 16), conv_chunks(20, 16), conv_chunks(1, 16)
    ([(0, 16), (16, 33)], [(0, 16), (16, 20)], [(0, 1)])
    """
    bounds = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], count)]
    return bounds


def run_in_chunks(network, examples, chunk):
    """``network`` over channels-last ``[N, 1, 96, 64]`` examples in :func:`conv_chunks`, the rows concatenated.

    An example gets the same bits whatever else its chunk holds: a lone
    ``[1, 1, 96, 64]`` example is laid out as NCHW and as channels-last at
    once, and the first convolution then took another kernel (its embedding
    differed from the same example's in a larger batch by up to 2e-5, in
    float32 and in int8), so items depended on how clips fell into batches.
    A lone example runs paired with itself.
    """
    outputs = []
    for start, stop in conv_chunks(examples.shape[0], chunk):
        part = examples[start:stop]
        if stop - start == 1:
            part = torch.cat([part, part]).contiguous(memory_format=torch.channels_last)
        outputs.append(network(part)[:stop - start])
    return torch.cat(outputs)
