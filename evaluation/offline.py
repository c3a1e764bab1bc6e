"""Hugging Face offline mode unless the environment says otherwise (import before datasets / lmms_eval).

Frontier's machines cannot reach the Hub: without these, ``datasets`` makes a usage-counting request
even for local parquet files and real tasks wait on network timeouts. A worker with network access
sets ``HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0`` to allow downloads.
"""

import os

for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(variable, "1")
