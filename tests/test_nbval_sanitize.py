"""tests/nbval_sanitize.cfg: what nbval treats as equal when it checks the chapters' stored outputs."""

from __future__ import annotations

import re
from pathlib import Path

from nbval.plugin import get_sanitize_patterns

CFG = Path(__file__).with_name("nbval_sanitize.cfg")


def _sanitize(text: str) -> str:
    for regex, replace in get_sanitize_patterns(CFG.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_full_precision_floats_from_two_cpus_compare_equal() -> None:
    # seen: the same glued values on an AMD EPYC (AVX2) and an Intel Xeon (AVX-512)
    assert _sanitize("7.062443733215332") == _sanitize("7.062446594238281")
    assert _sanitize("0.8992735147476196") == _sanitize("0.8992734551429749")


def test_differences_in_the_first_four_decimals_still_count() -> None:
    for a, b in (("0.8992", "0.8993"), ("0.89927", "0.89928"), ("279.01", "312.05"), ("7.0624437", "7.0625437")):
        assert _sanitize(a) != _sanitize(b), (a, b)
    assert _sanitize("domain FID 279.010 and R-precision 0.12160") == "domain FID 279.010 and R-precision 0.12160"
