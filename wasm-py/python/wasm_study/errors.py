"""The exceptions of wasm_study: one class per kind of ``wasm_app::Error``.

Every error the library raises is a :class:`WasmError`. A guest can make a
call fail with any of them; it cannot crash the interpreter.
"""


class WasmError(Exception):
    """Base class of every error of wasm_study."""


class LoadError(WasmError):
    """The module could not be read, parsed, validated or compiled."""


class MissingExport(WasmError, AttributeError):
    """The module does not export what the called ABI needs."""


class WrongSignature(WasmError, TypeError):
    """An export exists with another type than the ABI's."""


class InstantiateError(WasmError):
    """The module imports something the policy does not provide."""


class Trap(WasmError):
    """The guest trapped (``unreachable``, out-of-bounds access, ...).

    ``backtrace`` is the wasm backtrace when one was captured, else None.
    """

    backtrace = None


class LimitExceeded(WasmError):
    """The guest hit one of its policy's limits.

    ``limit`` names it: ``"memory"``, ``"time"``, ``"fuel"``,
    ``"table-elements"``, ``"instances"``, ``"module-size"``,
    ``"compile-time"`` or ``"output"``; ``value`` is the limit in bytes,
    seconds or a count.
    """

    limit = None
    value = None


class InvalidPolicy(WasmError, ValueError):
    """A policy value that makes no sense (a zero timeout, a bad size...)."""


class PolicyDenied(WasmError, PermissionError):
    """The policy refused something before any guest code ran."""


class GuestError(WasmError):
    """The guest reported an error; ``guest_message`` is its own text, or None."""

    guest_message = None


class GuestProtocolError(WasmError):
    """The guest broke the ABI: a bad pointer, a bad string, or an allocator
    that misbehaved (``kind`` is ``"bad-pointer"``, ``"bad-string"`` or
    ``"allocator"``)."""

    kind = None


class GuestExited(WasmError):
    """The guest called ``proc_exit``; ``status`` is its exit status."""

    status = None


class InvalidArgument(WasmError, ValueError):
    """An argument the ABI or the policy cannot carry."""


__all__ = [
    "WasmError",
    "LoadError",
    "MissingExport",
    "WrongSignature",
    "InstantiateError",
    "Trap",
    "LimitExceeded",
    "InvalidPolicy",
    "PolicyDenied",
    "GuestError",
    "GuestProtocolError",
    "GuestExited",
    "InvalidArgument",
]
