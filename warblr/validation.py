"""Checking scalar arguments, in the style of scikit-learn's ``check_scalar``.

Library functions name the parameter (``batch_size``); the command line
maps :attr:`InvalidArgumentError.parameter` to its flag (``--batch-size``),
so each rule is written once and reads right in both places.
"""

from __future__ import annotations

import numbers

from .errors import InvalidArgumentError

__all__ = ["check_scalar", "parse_scalar", "flag_name", "argparse_type"]


def _describe(target_type, min_val, max_val):
    noun = "an integer" if target_type is int else "a number"
    if min_val is not None and max_val is not None:
        return f"{noun} in [{min_val}, {max_val}]"
    if min_val is not None:
        return f"{noun} >= {min_val}"
    if max_val is not None:
        return f"{noun} <= {max_val}"
    return noun


def check_scalar(value, name, target_type=int, *, min_val=None, max_val=None):
    """Return ``value`` as ``target_type`` if it is one within the bounds, else raise.

    Parameters
    ----------
    value : object
    name : str
        The parameter's name, as the caller's signature spells it.
    target_type : {int, float}
        ``int`` accepts Python and numpy integers (not bools); ``float``
        accepts any finite real number.
    min_val, max_val : number, optional, keyword-only
        Inclusive bounds.

    Returns
    -------
    int or float

    Raises
    ------
    InvalidArgumentError
        With ``parameter=name`` and ``reason`` the message without the name.

    Examples
    --------
    >>> check_scalar(16, "group_size", min_val=1)
    16
    >>> check_scalar(0, "group_size", min_val=1)
    Traceback (most recent call last):
    ...
    warblr.errors.InvalidArgumentError: group_size: expected an integer >= 1, got 0
    """
    if target_type is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif target_type is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value \
            and abs(value) != float("inf")
    else:
        raise TypeError(f"target_type must be int or float, got {target_type!r}")
    ok = ok and (min_val is None or value >= min_val) and (max_val is None or value <= max_val)
    if not ok:
        reason = f"expected {_describe(target_type, min_val, max_val)}, got {value!r}"
        raise InvalidArgumentError(f"{name}: {reason}", parameter=name, reason=reason)
    return target_type(value)


def parse_scalar(text, name, target_type=int, *, min_val=None, max_val=None):
    """:func:`check_scalar` on text (a command-line value): parse it as ``target_type``, then check it.

    Examples
    --------
    >>> parse_scalar("8", "clips", min_val=1)
    8
    >>> parse_scalar("x", "clips", min_val=1)
    Traceback (most recent call last):
    ...
    warblr.errors.InvalidArgumentError: clips: expected an integer >= 1, got 'x'
    """
    try:
        value = target_type(text)
    except (TypeError, ValueError):
        value = text
    return check_scalar(value, name, target_type, min_val=min_val, max_val=max_val)


def flag_name(parameter):
    """The command-line flag of a library parameter name.

    Examples
    --------
    >>> flag_name("batch_size")
    '--batch-size'
    """
    return "--" + parameter.replace("_", "-")


def argparse_type(target_type=int, *, min_val=None, max_val=None):
    """An argparse ``type=`` that parses text and applies :func:`check_scalar`'s rule.

    Examples
    --------
    >>> argparse_type(int, min_val=0)("3")
    3
    """
    import argparse

    def parse(text):
        try:
            return parse_scalar(text, "value", target_type, min_val=min_val, max_val=max_val)
        except InvalidArgumentError as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None

    parse.__name__ = target_type.__name__  # argparse says "invalid int value" for other errors
    return parse
