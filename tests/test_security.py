"""Security basics: no checkpoint unpickles code, and no name leads a write out of its folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cli_helpers import assert_one_line_error, invoke
from repscope._validation import InputError
from repscope.experiment.run import Stage, _part
from repscope.io.paths import inside


class _Payload:
    """Unpickling this object creates the file ``marker``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    checkpoint = tmp_path / "evil.pt"
    torch.save({"stem.0.weight": _Payload(marker)}, checkpoint)
    torch.load(checkpoint, weights_only=False)  # the plain unpickler does run it
    assert marker.exists()
    marker.rmdir()

    def extract(spec: str):  # type: ignore[no-untyped-def]
        out = ["--out", tmp_path / "emb.npz", "--cache-dir", tmp_path / "cache"]
        return invoke("extract", spec, "--stimuli", "builtin:digits", *out)

    result = extract(f"local:{checkpoint}?arch=convnext_atto")
    assert_one_line_error(result, r"weights_only=True.*\.safetensors")
    as_torchscript = extract(f"local:{checkpoint}")
    assert_one_line_error(as_torchscript, r"not a TorchScript archive")
    assert not marker.exists()
    assert not (tmp_path / "emb.npz").exists()


@pytest.mark.parametrize("name", ["../escaped", "/etc/passwd", "figures/../../up", "a\0b", ""])
def test_names_that_leave_the_output_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="would leave the output folder"):
        inside(tmp_path, name)


def test_plain_names_stay_inside(tmp_path: Path) -> None:
    assert inside(tmp_path, "figures", "01-lid.png") == tmp_path / "figures" / "01-lid.png"


def test_a_hostile_model_spec_names_a_part_inside_the_parts_folder(tmp_path: Path) -> None:
    """A spec full of separators and dots becomes one file name in ``parts/``."""
    import pandas as pd

    stage = Stage("dimension", "local:../../../tmp/x?arch=a/../b", "0123456789abcdef", 0.0, 0.0)
    parts = tmp_path / "out" / "parts"
    _part(stage, parts, lambda: pd.DataFrame({"v": [1.0]}))
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.parent == parts for p in written)
