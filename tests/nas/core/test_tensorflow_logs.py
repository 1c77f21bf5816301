"""TensorFlow's start-up noise is dropped; everything else it prints still shows."""

from __future__ import annotations

import os
import subprocess
import sys

from nas.core.tensorflow_logs import NOISE, quiet_lines

# oneDNN on whatever the CPU, so that TensorFlow prints its line at import on every machine
ONEDNN = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_quiet_lines_drops_only_the_noise():
    text = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n"
        "E0000 something real went wrong\n"
        "a last line without a newline"
    )
    assert quiet_lines(text) == "E0000 something real went wrong\na last line without a newline"


def test_a_process_that_imports_keras_prints_none_of_tensorflows_start_up_lines():
    code = (
        "import sys\n"
        "from nas.core.tensorflow_logs import import_tensorflow_quietly\n"
        "import_tensorflow_quietly()\n"
        "import keras\n"
        "print('after the import', file=sys.stderr)\n"
        "print(keras.ops.convert_to_numpy(keras.ops.ones((2,))).sum())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=ONEDNN,
    )
    assert result.stdout.strip() == "2.0"
    assert "after the import" in result.stderr
    assert not [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]


def test_without_the_filter_tensorflow_does_print_them():
    """The test above can fail: a plain import prints the lines it drops."""
    result = subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=ONEDNN,
    )
    assert any(n in result.stderr for n in NOISE)
