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
