"""Hugging Face offline mode unless the environment says otherwise (import before datasets / lmms_eval).

Frontier's machines cannot reach the Hub: without these, ``datasets`` makes a usage-counting request
even for local parquet files and real tasks wait on network timeouts. Evaluation reads the dataset
mirror (``evaluation.datasets``); only ``python -m evaluation datasets prefetch`` goes online, unless
HF_HUB_OFFLINE was set by whoever started it. The variables this module sets are listed in
``FRONTIER_HF_OFFLINE_DEFAULTED`` (inherited by child processes, so they know the value is a default).
"""

import os

DEFAULTED_VARIABLE = "FRONTIER_HF_OFFLINE_DEFAULTED"
_defaulted = [variable for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if variable not in os.environ]
for variable in _defaulted:
    os.environ[variable] = "1"
if _defaulted:
    os.environ[DEFAULTED_VARIABLE] = ",".join(
        sorted(set(filter(None, os.environ.get(DEFAULTED_VARIABLE, "").split(","))) | set(_defaulted))
    )


def defaulted() -> set[str]:
    """The HF_*_OFFLINE variables whose value is this module's default, not the user's choice."""
    return set(filter(None, os.environ.get(DEFAULTED_VARIABLE, "").split(",")))
