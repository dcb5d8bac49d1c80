"""Helpers for parameterised (papermill) notebooks.

papermill injects the parameters it is given as a cell of assignments after the cell tagged
``parameters``, and only *warns* about names the notebook does not declare. A typo such as
``-p datadir /data/birds`` would then silently train on the default data. The book's
parameterised chapters therefore call :func:`check_parameters` right after the injected cell,
which fails at once and lists the valid names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class UnknownParameterError(ValueError):
    """A papermill parameter that the notebook does not declare."""


def check_parameters(
    before: Iterable[str], namespace: Mapping[str, Any], valid: Iterable[str]
) -> dict[str, Any]:
    """Return the notebook's parameters, or raise for names the notebook does not declare.

    Args:
        before: the names defined before the ``parameters`` cell ran (``set(globals())``).
        namespace: the namespace after the parameters and injected-parameters cells
            (``globals()``).
        valid: the declared parameter names.

    Raises:
        UnknownParameterError: some name was defined by the injected cell but is not declared;
            the message lists it and every valid name.
    """
    known = set(before)
    declared = set(valid)
    new = {name for name in namespace if name not in known and not name.startswith("_")}
    unknown = sorted(new - declared)
    if unknown:
        raise UnknownParameterError(
            f"unknown notebook parameter(s): {', '.join(unknown)}. "
            f"Valid parameters are: {', '.join(sorted(declared))} (papermill -p NAME VALUE)."
        )
    missing = sorted(declared - set(namespace))
    if missing:
        raise UnknownParameterError(f"the parameters cell does not define: {', '.join(missing)}.")
    return {name: namespace[name] for name in sorted(declared)}


def as_overrides(value: Any, name: str = "overrides") -> list[str]:
    """A notebook's ``overrides`` parameter as a list of ``"key=value"`` strings.

    papermill's ``-p overrides "lr_g=0.001"`` passes one string, ``-y 'overrides: [lr_g=0.001, ...]'``
    a list; both are accepted. A string is one setting and is not split (``betas=0.5,0.999`` is
    one setting); pass several as a list with ``-y``.

    Raises:
        TypeError: anything else (the message shows both accepted forms).
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(
        f"notebook parameter {name} must be one \"key=value\" string (-p {name} lr_g=0.001) or a list of them "
        f"(-y '{name}: [lr_g=0.001, batch_size=8]'), got {type(value).__name__}: {value!r}."
    )
