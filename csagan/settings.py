"""One way to check and parse settings, shared by every workflow's configuration.

The model configuration (:class:`csagan.config.ModelConfig`), the GAN training configuration
(:class:`csagan.train.config.TrainConfig`) and DAMSM pretraining's settings
(:func:`csagan.pretrain.damsm_settings`) are all set from the command line with ``--set key=value``
(and from papermill's ``overrides``). :func:`parse_override` splits such a string,
:func:`parse_value` turns its text into a value (typed by the field's annotation where there is
one), and :func:`check_type` refuses a value of the wrong type with a message that names the field.

:class:`Settings` is the base of every workflow's frozen configuration dataclass (model, training,
DAMSM pretraining, evaluation, the study): it checks the fields' types, makes changed copies
(:meth:`Settings.replace`), turns a config into JSON and back (:meth:`Settings.to_dict`,
:meth:`Settings.from_dict`) and parses ``key=value`` lists into typed changes
(:meth:`Settings.parse_sets`), so each config only states its own range checks.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

__all__ = ["Settings", "check_type", "parse_override", "parse_value"]


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _is_type(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return value in get_args(hint)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return any(_is_type(value, h) for h in get_args(hint))
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, tuple):
            return False
        if args and args[-1] is Ellipsis:
            return all(_is_type(v, args[0]) for v in value)
        return len(value) == len(args) and all(_is_type(v, h) for v, h in zip(value, args))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # a type this module does not check (none of the configs has one)


def check_type(owner: str, name: str, value: Any, hint: Any) -> None:
    """Raise if ``value`` does not fit the annotation ``hint`` of ``owner.name``.

    Raises:
        ValueError: a ``Literal`` field given another value (the message lists the choices).
        TypeError: any other mismatch (the message shows the value and its type).
    """
    if get_origin(hint) is Literal:
        if value not in get_args(hint):
            raise ValueError(f"{owner}.{name}={value!r} is invalid; choose one of {list(get_args(hint))}.")
        return
    if not _is_type(value, hint):
        shown = getattr(hint, "__name__", hint)
        raise TypeError(f"{owner}.{name} must be of type {shown}, got {value!r} ({type(value).__name__}).")


def parse_override(text: str) -> tuple[str, str]:
    """Split ``"key=value"`` into ``(key, value_text)``.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    if not isinstance(text, str):
        raise ValueError(f"override {text!r} must be a 'key=value' string.")  # noqa: TRY004 (bad input: ValueError)
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value (e.g. batch_size=8 or nf=16).")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"override {text!r} has an empty key; write key=value.")
    return key, value.strip()


def _allows_none(hint: Any) -> bool:
    return hint is None or any(a is type(None) for a in get_args(hint))


def parse_value(key: str, text: str, hint: Any = None) -> Any:
    """The value of ``key=text`` for a field annotated ``hint`` (``None``: an unannotated setting).

    Booleans accept true/false/yes/no/on/off/1/0; ``null``/``none`` is ``None`` where the field
    allows it; other values are Python literals (``3``, ``0.5``, ``(0.0, 0.9)``, ``[0.5, 0.999]``,
    ``0.5,0.999`` for a tuple); text that is no literal stays a string where a string fits
    (``device=cpu``). The caller checks the parsed value's type (:func:`check_type`).

    Raises:
        ValueError: the text cannot be read as the field's type.
    """
    origin = get_origin(hint)
    low = text.strip().lower()
    if hint is bool:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"override {key}={text!r}: expected a boolean (true/false).")
    if low in ("null", "none") and _allows_none(hint):
        return None
    if hint is None and low in ("true", "false"):
        return low == "true"
    is_str = hint is None or hint is str or (
        origin is Literal and all(isinstance(a, str) for a in get_args(hint))
    ) or any(a is str for a in get_args(hint))
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if is_str:
            return text
        raise ValueError(f"override {key}={text!r}: cannot parse the value as {hint}.") from None
    if is_str and hint is not None and not isinstance(value, str) and not _fits_other(value, hint):
        return text
    if origin is tuple:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, tuple):
            args = get_args(hint)
            n = len(args) if args and args[-1] is not Ellipsis else 1
            raise ValueError(
                f"override {key}={text!r}: expected {n} comma-separated values, e.g. {key}=0.5,0.999."
                if n > 1 else f"override {key}={text!r}: expected comma-separated values."
            )
    return value


def _fits_other(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits a non-string member of a union annotation (``int | str``)."""
    return any(a is not str and _is_type(value, a) for a in get_args(hint) if get_origin(a) is not Literal)


def _parse_tuple(key: str, text: str, hint: Any) -> Any:
    """``a,b,c`` for a tuple field: each part parsed by its element type (``csagan,dfgan``, ``0,1,2``,
    ``0.5,0.999``); a bracketed literal (``(0.5, 0.999)``) goes through :func:`parse_value` whole."""
    if text.strip()[:1] in ("(", "["):
        return parse_value(key, text, hint)
    args = get_args(hint)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if args and args[-1] is Ellipsis:
        return tuple(parse_value(key, p, args[0]) for p in parts)
    if args and len(parts) != len(args):
        raise ValueError(f"override {key}={text!r}: expected {len(args)} comma-separated values.")
    return tuple(parse_value(key, p, h) for p, h in zip(parts, args or [None] * len(parts)))


class Settings:
    """Base of the frozen configuration dataclasses: type check, copies, JSON, ``key=value`` parsing.

    A subclass is a ``@dataclass(frozen=True)`` whose fields carry type annotations; it sets
    :attr:`settings_label` (how error messages name one of its fields, e.g. ``"study setting"``) and
    calls :meth:`check_fields` first in its ``__post_init__``, then checks its own ranges.
    """

    settings_label: ClassVar[str] = "setting"

    @classmethod
    def field_hints(cls) -> dict[str, Any]:
        """Each field's resolved type annotation, by name (in field order)."""
        return _hints(cls)

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of the fields, in order."""
        return list(_hints(cls))

    @classmethod
    def check_names(cls, names: Iterable[str]) -> None:
        """Refuse names that are not fields.

        Raises:
            ValueError: the unknown names, and every valid one.
        """
        valid = cls.field_names()
        unknown = sorted(set(names) - set(valid))
        if unknown:
            raise ValueError(f"unknown {cls.settings_label}(s) {unknown}; valid names are: {', '.join(valid)}.")

    def check_fields(self) -> None:
        """Check every field against its annotation (lists given for tuple fields become tuples).

        Raises:
            TypeError / ValueError: from :func:`check_type`, naming the class and the field.
        """
        owner = type(self).__name__
        for name, hint in _hints(type(self)).items():
            value = getattr(self, name)
            if isinstance(value, list) and _wants_tuple(hint):
                value = tuple(value)
                object.__setattr__(self, name, value)
            check_type(owner, name, value, hint)

    def replace(self, **changes: Any) -> typing.Self:
        """A copy with ``changes`` (names checked, values validated again)."""
        self.check_names(changes)
        return dataclasses.replace(self, **changes)  # type: ignore[type-var,no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples become lists; inverse of :meth:`from_dict`)."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()  # type: ignore[call-overload]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> typing.Self:
        """Build a config from :meth:`to_dict`'s output.

        Raises:
            TypeError: ``data`` is not a mapping (or a value has the wrong type).
            ValueError: an unknown key.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}.")
        cls.check_names(data)
        return cls(**data)

    @classmethod
    def parse_sets(cls, items: Sequence[str]) -> dict[str, Any]:
        """Parse ``key=value`` strings (``--set``, papermill ``overrides``) into typed changes.

        Tuple fields take comma-separated parts (``seeds=0,1,2``); ``-`` in a key reads as ``_``.

        Raises:
            ValueError: a string without ``=``, an unknown name, or text that is not a value of the
                field's type.
        """
        hints = _hints(cls)
        out: dict[str, Any] = {}
        for item in items:
            key, text = parse_override(item)
            key = key.replace("-", "_")
            cls.check_names([key])
            hint = hints[key]
            out[key] = _parse_tuple(key, text, hint) if get_origin(hint) is tuple else parse_value(key, text, hint)
        return out


def _wants_tuple(hint: Any) -> bool:
    return get_origin(hint) is tuple or any(get_origin(a) is tuple for a in get_args(hint))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules[cls.__module__]
    all_hints = typing.get_type_hints(cls, globalns=vars(module))
    return {f.name: all_hints[f.name] for f in dataclasses.fields(cls)}
