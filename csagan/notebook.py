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

from csagan.config import list_configs
from csagan.train.config import list_train_presets


class UnknownParameterError(ValueError):
    """A papermill parameter that the notebook does not declare."""


def check_parameters(
    before: Iterable[str],
    namespace: Mapping[str, Any],
    valid: Iterable[str],
    renamed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Return the notebook's parameters, or raise for names the notebook does not declare.

    Args:
        before: the names defined before the ``parameters`` cell ran (``set(globals())``).
        namespace: the namespace after the parameters and injected-parameters cells
            (``globals()``).
        valid: the declared parameter names.
        renamed: old parameter names and their new names; an old name is reported with its new one.

    Raises:
        UnknownParameterError: some name was defined by the injected cell but is not declared;
            the message lists it and every valid name.
    """
    known = set(before)
    declared = set(valid)
    new = {name for name in namespace if name not in known and not name.startswith("_")}
    unknown = sorted(new - declared)
    moved = [name for name in unknown if renamed and name in renamed]
    if moved:
        raise UnknownParameterError(
            "; ".join(f"notebook parameter {name} was renamed {renamed[name]}" for name in moved)  # type: ignore[index]
            + f" (papermill -p {renamed[moved[0]]} VALUE). Valid parameters are: {', '.join(sorted(declared))}."  # type: ignore[index]
        )
    if unknown:
        raise UnknownParameterError(
            f"unknown notebook parameter(s): {', '.join(unknown)}. "
            f"Valid parameters are: {', '.join(sorted(declared))} (papermill -p NAME VALUE)."
        )
    missing = sorted(declared - set(namespace))
    if missing:
        raise UnknownParameterError(f"the parameters cell does not define: {', '.join(missing)}.")
    return {name: namespace[name] for name in sorted(declared)}


def check_model_config(config: Any, name: str = "config") -> None:
    """Refuse a train preset given where a model configuration is expected.

    The training chapter's ``config`` parameter names the model variant, as ``csagan train --config``
    does; it used to name the train preset, which is now ``preset``. A preset name there (``cub``)
    would otherwise fail later with a less helpful message.

    Raises:
        ValueError: ``config`` is a train preset name, or not a model configuration at all.
    """

    if config in list_configs():
        return
    if config in list_train_presets():
        raise ValueError(
            f"notebook parameter {name}={config!r} is a train preset: {name} names the model configuration "
            f"({', '.join(list_configs())}); pass the preset as preset (papermill -p preset {config})."
        )
    raise ValueError(f"notebook parameter {name}={config!r} is not a model configuration; choose one of "
                     f"{', '.join(list_configs())}.")


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


class CheckFailed(AssertionError):
    """A chapter's numerical verification did not hold."""


def _as_array(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def check(label: str, actual: Any, expected: Any, *, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Assert that ``actual`` equals ``expected`` within ``|a - e| <= atol + rtol * |e|``, elementwise.

    The book's verification cells print what they compare and then call this, so that a wrong
    value stops the notebook (under ``make execute``, nbval and papermill alike) instead of being
    committed as an output. Scalars, sequences, NumPy arrays and torch tensors are accepted; the
    shapes must match exactly (no broadcasting).

    Raises:
        CheckFailed: shapes differ, a value is NaN, or some element is out of tolerance; the
            message names the check, the worst element, both values and the tolerances.
    """
    import numpy as np

    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        raise CheckFailed(f"check '{label}': shape {a.shape} != expected shape {e.shape}")
    if np.isnan(a).any() or np.isnan(e).any():
        raise CheckFailed(f"check '{label}': NaN in {'actual' if np.isnan(a).any() else 'expected'} value")
    excess = np.abs(a - e) - (atol + rtol * np.abs(e))
    if a.size and excess.max() > 0:
        i = tuple(int(k) for k in np.unravel_index(int(np.argmax(excess)), a.shape)) if a.ndim else ()
        raise CheckFailed(
            f"check '{label}' failed: actual {float(a[i]):.10g} vs expected {float(e[i]):.10g}"
            f"{f' at index {i}' if a.ndim else ''} (|diff| {abs(a[i] - e[i]):.3g} > atol {atol:g} + rtol {rtol:g} * |expected|)"
        )


def check_that(label: str, condition: Any, detail: str = "") -> None:
    """Assert a yes/no claim (``condition`` truthy: a bool, a 0-d tensor or array).

    Raises:
        CheckFailed: the condition is false; the message names the check and ``detail``
            (write the compared values there).
    """
    if not bool(condition):
        raise CheckFailed(f"check '{label}' failed{': ' + detail if detail else ''}")
