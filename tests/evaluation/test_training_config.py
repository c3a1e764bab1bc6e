"""The training-config checks import without torch (the web process runs them), and their table of
compressor methods is the compressors' own."""

import subprocess
import sys
from pathlib import Path

from evaluation.compressors import COMPRESSORS
from evaluation.vlm_spec import COMPRESSOR_METHODS

REPO = Path(__file__).resolve().parents[2]


def test_the_config_checks_import_without_torch():
    code = (
        "import sys, evaluation.training_config\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'transformers')))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_torch_free_method_table_lists_every_compressor_in_order():
    assert COMPRESSOR_METHODS == tuple(COMPRESSORS)
