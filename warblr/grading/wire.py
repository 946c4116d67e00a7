"""Plain data across the grader/worker boundary: JSON plus numpy arrays, never pickle.

Both sides of an isolated grading run speak this format over a socket. One
message is a JSON header followed by the raw bytes of its arrays::

    8-byte length | JSON header (with "blobs": [{"dtype": "<f4", "shape": [..]}, ...]) | bytes of each array

Arrays are rebuilt with ``np.frombuffer`` from a dtype string that must name
a plain bool or numeric type (``<f4``, ``|b1``, ...): no pickle, no object or
structured dtype, and sizes are checked against the header before reading.

Values that may cross (:func:`encode`):

* ``None``, ``bool``, ``int``, ``float`` (also NaN/inf), ``str``;
* ``list``, ``tuple`` (a namedtuple counts as a tuple) and ``dict`` with
  ``str`` keys (``OrderedDict`` counts as a dict), read through the built-in
  types' own methods so a subclass cannot lie about its items;
* ``numpy.ndarray`` (exactly, not a subclass) and numpy scalars with a
  numeric or bool dtype;
* ``torch.Tensor`` / ``nn.Parameter`` (exactly): an array plus its dtype and
  ``requires_grad``;
* handles: live objects that stay on the worker's side (``{"__handle__": n}``),
  and references to the graded functions (``{"__function__": [module, name]}``).

Anything else is refused with :class:`NotPlainData`, whose message names the
type. The decoder validates every marker and every blob; a malformed or
oversized message raises :class:`WireError`. What one side accepts is
bounded by :class:`ReplyLimits` (total bytes, header bytes, JSON elements
and depth), checked on the raw bytes before anything is built from them. This module imports only the
standard library and numpy (torch only when a tensor crosses), so the worker
loads it before any student code.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct

import numpy as np

#: Largest message accepted by default (the VGGish state_dict is about 290 MB: requests may carry it).
MAX_MESSAGE_BYTES = 1 << 30

#: dtype kinds that may cross: bool, signed, unsigned, float, complex.
ARRAY_KINDS = "biufc"

_LENGTH = struct.Struct("<Q")
_TENSOR_TYPES = None


class WireError(Exception):
    """A message that is not well formed (or too large): the other side broke the protocol."""


class NotPlainData(TypeError):
    """A value that may not cross the boundary (not plain data and not a handle)."""


class Handle:
    """A live object kept on the worker's side, known to the grader by a number.

    Parameters
    ----------
    number : int
        The worker's key for the object.
    type_name : str
        Qualified class name of the object, as the worker reports it.
    """

    __slots__ = ("number", "type_name")

    def __init__(self, number, type_name=""):
        self.number = int(number)
        self.type_name = str(type_name)

    def __repr__(self):
        return f"Handle({self.number}, {self.type_name!r})"


class FunctionRef:
    """A graded function ``module.name`` (e.g. ``logmel.log_mel_spectrogram``) passed by name."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = str(module), str(name)

    def __repr__(self):
        return f"FunctionRef({self.module!r}, {self.name!r})"


def qualified_name(cls):
    """``module.QualName`` of a class (``"numpy.ndarray"``)."""
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', '?'))}"


def _tensor_types():
    global _TENSOR_TYPES
    if _TENSOR_TYPES is None:
        import sys

        torch = sys.modules.get("torch")
        _TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter) if torch is not None else ()
    return _TENSOR_TYPES


def _is_tensor(value):
    import sys

    return "torch" in sys.modules and type(value) in _tensor_types()


def encode(value, blobs, *, to_handle=None, depth=0):
    """The JSON-able form of ``value``; arrays are appended to ``blobs``.

    Parameters
    ----------
    value : object
        The value to send.
    blobs : list of numpy.ndarray
        Receives the arrays; the header refers to them by index.
    to_handle : callable, optional
        ``to_handle(value)`` -> :class:`Handle` or None: keeps a live object
        on this side (the worker passes one; the grader passes None).

    Raises
    ------
    NotPlainData
        ``value`` (or something inside it) may not cross.
    """
    if depth > 64:
        raise NotPlainData("nested more than 64 levels deep")
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if kind is np.ndarray:
        if value.dtype.kind not in ARRAY_KINDS or value.dtype.fields is not None:
            raise NotPlainData(f"a numpy array of dtype {value.dtype} (only bool and numeric arrays may be returned)")
        blobs.append(value)
        return {"__array__": len(blobs) - 1}
    if isinstance(value, np.generic) and kind.__module__ == "numpy":
        array = np.asarray(value)
        if array.dtype.kind not in ARRAY_KINDS:
            raise NotPlainData(f"a numpy scalar of dtype {array.dtype}")
        blobs.append(array)
        return {"__scalar__": len(blobs) - 1}
    if _is_tensor(value):
        import torch

        tensor = torch.Tensor.detach(value).cpu()
        dtype = str(tensor.dtype)
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        blobs.append(tensor.numpy())
        return {"__tensor__": len(blobs) - 1, "dtype": dtype, "requires_grad": bool(value.requires_grad)}
    if isinstance(value, Handle):
        return {"__handle__": value.number, "type": value.type_name}
    if isinstance(value, FunctionRef):
        return {"__function__": [value.module, value.name]}
    if isinstance(value, tuple) and (kind is tuple or hasattr(kind, "_fields")):
        return {"__tuple__": [encode(item, blobs, to_handle=to_handle, depth=depth + 1)
                              for item in tuple.__iter__(value)]}
    if kind is list:
        return [encode(item, blobs, to_handle=to_handle, depth=depth + 1) for item in list.__iter__(value)]
    if isinstance(value, dict) and kind.__module__ in ("builtins", "collections"):
        items = []
        for key, item in dict.items(value):
            if type(key) is not str:
                raise NotPlainData(f"a dict with a {type(key).__name__} key (only str keys may be returned)")
            items.append([key, encode(item, blobs, to_handle=to_handle, depth=depth + 1)])
        return {"__dict__": items}
    if to_handle is not None:
        handle = to_handle(value)
        if handle is not None:
            return {"__handle__": handle.number, "type": handle.type_name}
    raise NotPlainData(f"a {qualified_name(kind)} object, which is not plain data")


def decode(node, blobs, *, from_handle=None, from_function=None, depth=0):
    """Rebuild a value from :func:`encode`'s form; validates every marker.

    ``from_handle(Handle)`` and ``from_function(FunctionRef)`` turn references
    into live objects (the worker) or proxies (the grader).

    Raises
    ------
    WireError
        An unknown marker, a bad blob index or a malformed node.
    """
    if depth > 66:
        raise WireError("nested too deep")
    kind = type(node)
    if node is None or kind in (bool, int, float, str):
        return node
    if kind is list:
        return [decode(item, blobs, from_handle=from_handle, from_function=from_function, depth=depth + 1)
                for item in node]
    if kind is not dict or len(node) == 0:
        raise WireError(f"unexpected node {kind.__name__}")
    marker = next(iter(node))
    if marker == "__float__" and node[marker] in ("nan", "inf", "-inf"):
        return float(node[marker])
    if marker in ("__array__", "__scalar__", "__tensor__"):
        index = node[marker]
        if type(index) is not int or not 0 <= index < len(blobs):
            raise WireError(f"bad blob index {index!r}")
        array = blobs[index]
        if marker == "__scalar__":
            return array[()]
        if marker == "__array__":
            return array
        import torch

        dtype = getattr(torch, str(node.get("dtype", "")).removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise WireError(f"bad tensor dtype {node.get('dtype')!r}")
        tensor = torch.from_numpy(array).to(dtype)
        if node.get("requires_grad") is True and (tensor.is_floating_point() or tensor.is_complex()):
            tensor.requires_grad_(True)
        return tensor
    if marker == "__tuple__" and type(node[marker]) is list:
        return tuple(decode(item, blobs, from_handle=from_handle, from_function=from_function, depth=depth + 1)
                     for item in node[marker])
    if marker == "__dict__" and type(node[marker]) is list:
        out = {}
        for pair in node[marker]:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                raise WireError("bad dict item")
            out[pair[0]] = decode(pair[1], blobs, from_handle=from_handle, from_function=from_function,
                                  depth=depth + 1)
        return out
    if marker == "__handle__" and type(node[marker]) is int and from_handle is not None:
        return from_handle(Handle(node[marker], str(node.get("type", ""))))
    if marker == "__function__" and from_function is not None:
        ref = node[marker]
        if type(ref) is list and len(ref) == 2 and all(type(part) is str for part in ref):
            return from_function(FunctionRef(*ref))
    raise WireError(f"unknown or malformed marker {marker!r}")


# ---------------------------------------------------------------- framing

_DTYPE = re.compile(r"[<>|]?[biufc][1-9][0-9]?")


def _blob_spec(array):
    return {"dtype": array.dtype.str, "shape": list(array.shape)}


def _blob_dtype_and_size(spec, budget, cap):
    """Validate one blob description from the other side; return ``(dtype, shape, nbytes)``."""
    if type(spec) is not dict or type(spec.get("dtype")) is not str or type(spec.get("shape")) is not list:
        raise WireError("bad blob description")
    if not _DTYPE.fullmatch(spec["dtype"]):
        raise WireError(f"array dtype {spec['dtype']!r} refused")
    dtype = np.dtype(spec["dtype"])
    shape = spec["shape"]
    # No dimension past the byte cap: beside a zero one, a huge dimension costs no bytes but numpy refuses the shape.
    if dtype.kind not in ARRAY_KINDS or len(shape) > 32 or any(type(n) is not int or not 0 <= n <= cap for n in shape):
        raise WireError(f"array of dtype {spec['dtype']} and {len(shape)} dimensions refused (a dimension past "
                        f"{cap} or not a count)")
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
        if nbytes > budget:
            raise WireError(f"a message larger than the {cap} bytes allowed")
    return dtype, tuple(shape), nbytes


def send(sock, header, blobs=()):
    """Send one message on a connected stream socket: the header, then each array's raw bytes.

    The header (JSON) describes every array by dtype string and shape; the
    bytes follow in C order. There is no pickle anywhere and no object dtype.
    """
    arrays = [np.ascontiguousarray(array) for array in blobs]
    header = dict(header, blobs=[_blob_spec(array) for array in arrays])
    text = json.dumps(header, allow_nan=False).encode("utf-8")
    sock.sendall(_LENGTH.pack(len(text)) + text)
    for array in arrays:
        if array.nbytes:
            sock.sendall(memoryview(array.reshape(-1).view(np.uint8)))


class ReplyLimits:
    """Bounds on one message read from the other side.

    The grader's defaults come from the largest legitimate replies of the
    reference solutions graded isolated (measured: 2.2 MB at most, almost
    all of it array bytes), with wide headroom: 64 MiB in all; a header
    may hold two million JSON values (a 30 s waveform returned as a list
    instead of an array still fits).

    Parameters
    ----------
    max_bytes : int
        Header plus arrays.
    max_header_bytes : int
        The JSON header alone (checked before it is read).
    max_elements : int
        JSON values in the header (counted on the raw bytes before parsing).
    max_depth : int
        Nesting of JSON arrays and objects.
    """

    __slots__ = ("max_bytes", "max_header_bytes", "max_elements", "max_depth")

    def __init__(self, *, max_bytes=64 << 20, max_header_bytes=32 << 20, max_elements=2_000_000, max_depth=64):
        self.max_bytes, self.max_header_bytes = int(max_bytes), int(max_header_bytes)
        self.max_elements, self.max_depth = int(max_elements), int(max_depth)

    def __repr__(self):
        return (f"ReplyLimits(max_bytes={self.max_bytes}, max_header_bytes={self.max_header_bytes}, "
                f"max_elements={self.max_elements}, max_depth={self.max_depth})")


#: What the worker accepts from the grader (requests may carry a model's weights).
REQUEST_LIMITS = ReplyLimits(max_bytes=MAX_MESSAGE_BYTES, max_header_bytes=64 << 20, max_elements=4_000_000,
                             max_depth=80)

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def check_json_shape(text, limits):
    """Refuse a JSON text with more values or deeper nesting than ``limits``, before it is parsed.

    Counts on the bytes (``[``, ``{``, ``,`` and ``:`` outside strings) so
    nothing is built from an oversized header: a 100 MB ``[[],[],...]``
    costs one pass over its bytes, not millions of lists.

    Raises
    ------
    WireError
        Too many elements or too deep.

    Examples
    --------
    >>> check_json_shape(b'{"a": [1, 2, "[,"]}', ReplyLimits(max_elements=10, max_depth=2))
    >>> check_json_shape(b'[[[]]]', ReplyLimits(max_depth=2))
    Traceback (most recent call last):
    ...
    warblr.grading.wire.WireError: JSON nested deeper than 2 levels
    """
    quick = sum(map(text.count, (b"[", b"{", b",", b":")))
    if quick <= limits.max_elements and b'"' not in text and quick <= limits.max_depth:
        return
    bare = _STRING.sub(b'""', text) if b'"' in text else text
    elements = sum(map(bare.count, (b"[", b"{", b",", b":")))
    if elements > limits.max_elements:
        raise WireError(f"JSON with more than {limits.max_elements} elements")
    depth = deepest = 0
    for byte in bare.translate(None, delete=bytes(set(range(256)) - set(b"[]{}"))):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
    if deepest > limits.max_depth:
        raise WireError(f"JSON nested deeper than {limits.max_depth} levels")


class Reader:
    """Reads messages from a socket, each within ``limits`` (:class:`ReplyLimits`).

    Parameters
    ----------
    recv_exact : callable
        ``recv_exact(n)`` -> a bytearray of exactly ``n`` bytes (raises
        EOFError at the end of the stream); the grader's waits with a deadline
        and drains the worker's output meanwhile.
    limits : ReplyLimits, optional
        Default :data:`REQUEST_LIMITS`.

    Attributes
    ----------
    last_size : int
        Bytes of the last message read (header plus arrays).
    """

    def __init__(self, recv_exact, *, limits=None):
        self.recv_exact = recv_exact
        self.limits = limits or REQUEST_LIMITS
        self.last_size = 0

    def read(self):
        """One message: ``(header, blobs)``; the arrays are writable and own no foreign memory."""
        limits = self.limits
        size = _LENGTH.unpack(bytes(self.recv_exact(_LENGTH.size)))[0]
        if size > min(limits.max_header_bytes, limits.max_bytes):
            raise WireError(f"a message header of {size} bytes, more than the "
                            f"{min(limits.max_header_bytes, limits.max_bytes)} allowed")
        text = bytes(self.recv_exact(size))
        check_json_shape(text, limits)
        try:
            header = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise WireError(f"bad header: {exc}") from None
        del text
        if type(header) is not dict or type(header.get("blobs", [])) is not list:
            raise WireError("bad header")
        budget = limits.max_bytes - size
        specs = []
        for spec in header.pop("blobs", []):
            dtype, shape, nbytes = _blob_dtype_and_size(spec, budget, limits.max_bytes)
            budget -= nbytes
            specs.append((dtype, shape, nbytes))
        blobs = []
        for dtype, shape, nbytes in specs:
            data = self.recv_exact(nbytes) if nbytes else bytearray()
            blobs.append(np.frombuffer(data, dtype=dtype).reshape(shape))
        self.last_size = limits.max_bytes - budget
        return header, blobs


def blocking_recv_exact(sock):
    """A ``recv_exact(n)`` for :class:`Reader` that blocks; EOF raises :class:`EOFError`."""

    def recv_exact(count):
        buffer = bytearray(count)
        view, got = memoryview(buffer), 0
        while got < count:
            n = sock.recv_into(view[got:], min(count - got, 1 << 24))
            if n == 0:
                raise EOFError("the other side closed the connection")
            got += n
        return buffer

    return recv_exact


def close_quietly(*fds):
    """Close file descriptors, ignoring ones already closed."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
