"""The command-line interface: JSON contract, tables, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import repscope
from cli_helpers import assert_one_line_error, invoke, runner
from repscope.cli import app

LID_KEYS = {
    "estimator",
    "aggregate",
    "n_points",
    "n_features",
    "duplicates_dropped",
    "pca",
    "profile",
}
SPECTRUM_KEYS = {"pca90", "pca95", "participation_ratio", "effective_rank", "alpha"}
DEMO_NAMES = ["hypercube-2", "hypercube-5", "hypercube-10", "sphere-3", "digits", "mnist"]


def _points(n: int = 120, d: int = 3, D: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, D))


@pytest.fixture
def good_npy(tmp_path: Path) -> Path:
    path = tmp_path / "emb.npy"
    np.save(path, _points())
    return path


# ---- bad input: one line on stderr, exit 2, nothing on stdout


def _save(array: np.ndarray, name: str = "x.npy") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        path = folder / name
        if name.endswith(".npz"):
            np.savez(path, X=array)
        else:
            np.save(path, array)
        return path

    return write


def _nan_rows() -> np.ndarray:
    X = _points(50)
    X[[3, 10, 20], 1] = np.nan
    return X


def _inf_rows() -> np.ndarray:
    X = _points(50)
    X[[0, 49], 0] = np.inf
    X[0, 2] = -np.inf  # same row twice: still 2 rows
    return X


def _text_npy(folder: Path) -> Path:
    path = folder / "notes.npy"
    path.write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    return path


def _pickled_npy(folder: Path) -> Path:
    path = folder / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


def _truncated_npy(folder: Path) -> Path:
    full = folder / "full.npy"
    np.save(full, _points(200))
    path = folder / "cut.npy"
    path.write_bytes(full.read_bytes()[:300])
    return path


def _npz_without_x(folder: Path) -> Path:
    path = folder / "bundle.npz"
    np.savez(path, embedding=_points(), labels=np.arange(120))
    return path


def _npz_bad_ids(folder: Path) -> Path:
    path = folder / "ids.npz"
    np.savez(path, X=_points(120), ids=np.arange(100))
    return path


FILE_CASES = {
    "nan rows": (_save(_nan_rows()), r"NaN or infinite values in 3 of 50 rows"),
    "inf rows": (_save(_inf_rows()), r"NaN or infinite values in 2 of 50 rows"),
    "1-D array": (_save(np.arange(10.0)), r"must be 2-D .*got 1-D"),
    "3-D array": (_save(np.zeros((4, 3, 2))), r"must be 2-D .*got 3-D"),
    "empty array": (_save(np.empty((0, 5))), r"is empty"),
    "string array": (_save(np.array([["a", "b"], ["c", "d"]])), r"not numeric"),
    "text file named .npy": (_text_npy, r"notes\.npy is not a NumPy \.npy file"),
    "pickled objects": (_pickled_npy, r"never unpickles"),
    "truncated file": (_truncated_npy, r"cut\.npy could not be read .*truncated or corrupt"),
    "missing file": (lambda folder: folder / "absent.npy", r"absent\.npy' does not exist"),
    "directory": (lambda folder: folder, r"is a directory"),
    "unsupported extension": (lambda folder: folder / "x.csv", r"does not exist|extension"),
    "npz without X": (_npz_without_x, r"no array named 'X' \(it has 'embedding', 'labels'\)"),
    "npz X with NaN": (_save(_nan_rows(), "e.npz"), r"e\.npz\['X'\] contains NaN .* 3 of 50"),
    "ids length mismatch": (_npz_bad_ids, r"120 rows in X but 100 ids"),
}


@pytest.mark.parametrize("command", ["lid", "spectrum"])
@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_bad_file_gives_one_error_line(tmp_path, command, case):
    write, match = FILE_CASES[case]
    assert_one_line_error(invoke(command, write(tmp_path)), match)


def test_unsupported_extension_of_an_existing_file(tmp_path):
    path = tmp_path / "emb.csv"
    path.write_text("1,2\n3,4\n")
    assert_one_line_error(invoke("lid", path), r"extension '\.csv'")


def _with_duplicates(n_distinct: int, n_copies: int) -> np.ndarray:
    X = _points(n_distinct)
    return np.vstack([X, X[:n_copies]])


LID_CASES = {
    # 20 distinct rows (+10 exact copies): K=25 cannot have 25 distinct neighbours
    "K above distinct points": (_with_duplicates(20, 10), ["--k", "5,25"], r"25.*\b20\b"),
    "all rows identical": (np.ones((30, 4)), [], r"identical|distinct"),
    "duplicates raise": (_with_duplicates(40, 3), ["--duplicates", "raise"], r"duplicate"),
    "unknown estimator": (_points(), ["--estimator", "levina"], r"--estimator 'levina'.*mle"),
    "unknown aggregate": (_points(), ["--aggregate", "mode"], r"--aggregate 'mode'.*harmonic"),
    "bad k list": (_points(), ["--k", "5,x"], r"--k '5,x' is not a comma-separated list"),
    "empty k entry": (_points(), ["--k", "5,,10"], r"--k '5,,10'"),
    "pca not a number": (_points(), ["--pca", "abc"], r"--pca 'abc' is not a positive integer"),
    "pca zero": (_points(), ["--pca", "0"], r"--pca '0'"),
    "bad duplicates": (_points(), ["--duplicates", "keep"], r"--duplicates 'keep'.*drop, raise"),
    "bootstrap not int": (_points(), ["--bootstrap", "abc"], r"--bootstrap"),
    "negative bootstrap": (_points(), ["--bootstrap", "-3"], r"--bootstrap -3 is negative"),
    "unknown option": (_points(), ["--neighbours", "5"], r"No such option"),
}


@pytest.mark.parametrize("case", LID_CASES, ids=list(LID_CASES))
def test_bad_lid_input_gives_one_error_line(tmp_path, case):
    X, extra, match = LID_CASES[case]
    path = tmp_path / "emb.npy"
    np.save(path, X)
    assert_one_line_error(invoke("lid", path, *extra), match)


def test_all_rows_identical_spectrum(tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.ones((30, 4)))
    assert_one_line_error(invoke("spectrum", path), r"all 30 rows are identical")


def test_missing_file_argument_is_one_line():
    assert_one_line_error(invoke("lid"), r"Missing argument")


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, _nan_rows())
    proc = subprocess.run(
        [sys.executable, "-m", "repscope.cli", "lid", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: bad.npy contains NaN or infinite values in 3 of 50 rows; "
        "drop or impute those rows first."
    ]


def test_console_script_json_round_trip(tmp_path, good_npy):
    script = Path(sys.executable).with_name("repscope")
    # `make test` installs the package with its console script: a missing script is a failure
    assert script.exists(), f"console script not installed next to {sys.executable}"
    proc = subprocess.run(
        [str(script), "lid", str(good_npy), "--k", "5,10", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [p["k"] for p in json.loads(proc.stdout)["profile"]] == [5, 10]
    bad = subprocess.run(
        [str(script), "lid", str(tmp_path / "nope.npy")], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr


# ---- lid


def test_lid_json_schema(good_npy):
    result = invoke("lid", good_npy, "--k", "5,10,20", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert set(out) == LID_KEYS
    assert out["estimator"] == "mle"
    assert out["aggregate"] == "mean"
    assert out["n_points"] == 120
    assert out["n_features"] == 8
    assert out["duplicates_dropped"] == 0
    assert isinstance(out["pca"], int)
    assert [p["k"] for p in out["profile"]] == [5, 10, 20]
    for point in out["profile"]:
        assert set(point) == {"k", "lid"}
        assert math.isfinite(point["lid"]) and point["lid"] > 0


def test_lid_json_pca_none_is_null(good_npy):
    result = invoke("lid", good_npy, "--k", "10", "--pca", "none", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pca"] is None


def test_lid_json_counts_duplicates(tmp_path):
    path = tmp_path / "dups.npz"
    np.savez(path, X=_with_duplicates(100, 7), ids=np.arange(107))
    out = json.loads(invoke("lid", path, "--k", "10", "--json").stdout)
    assert out["n_points"] == 100
    assert out["duplicates_dropped"] == 7


@pytest.mark.parametrize(
    "options",
    [
        {"k": (5, 10, 20, 50), "estimator": "mle", "aggregate": "mean", "pca": 300},
        {"k": (8, 30), "estimator": "mle-unbiased", "aggregate": "harmonic", "pca": None},
        {"k": (10,), "estimator": "twonn", "aggregate": "median", "pca": 4},
    ],
)
def test_lid_json_equals_library(good_npy, options):
    args = ["--k", ",".join(map(str, options["k"])), "--estimator", options["estimator"]]
    args += ["--aggregate", options["aggregate"], "--pca", str(options["pca"]).lower()]
    result = invoke("lid", good_npy, *args, "--json")
    assert result.exit_code == 0, result.output
    expected = repscope.local_dimension(np.load(good_npy), **options)
    assert json.loads(result.stdout) == json.loads(json.dumps(expected.to_dict()))


def test_lid_json_with_bootstrap_equals_library(good_npy):
    result = invoke("lid", good_npy, "--k", "5,20", "--bootstrap", "30", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    expected = repscope.local_dimension(
        np.load(good_npy), k=(5, 20), n_bootstrap=30, random_state=3
    )
    assert out == json.loads(json.dumps(expected.to_dict()))
    for point in out["profile"]:
        assert point["ci_low"] <= point["lid"] <= point["ci_high"]


def test_lid_default_scales_are_capped(good_npy):
    out = json.loads(invoke("lid", good_npy, "--json").stdout)
    assert [p["k"] for p in out["profile"]] == [5, 10, 20, 50, 100]


def test_lid_table(good_npy):
    result = invoke("lid", good_npy, "--k", "5,10,20")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "emb.npy: 120 points (0 duplicates dropped), 8 features" in text
    assert "estimator mle" in text
    profile = repscope.local_dimension(np.load(good_npy), k=(5, 10, 20)).profile
    for k, value in profile.items():
        assert f"{k} " in text or f" {k}" in text
        assert f"{value:.2f}" in text
    assert "CI" not in text


def test_lid_table_with_ci(good_npy):
    result = invoke("lid", good_npy, "--k", "10", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert "CI" in result.stdout
    assert "[" in result.stdout


# ---- spectrum


def test_spectrum_json_equals_library(good_npy):
    result = invoke("spectrum", good_npy, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == SPECTRUM_KEYS
    spec = repscope.spectrum(np.load(good_npy))
    assert out == {key: getattr(spec, key) for key in SPECTRUM_KEYS}
    assert isinstance(out["pca90"], int)


def test_spectrum_table(good_npy):
    result = invoke("spectrum", good_npy)
    assert result.exit_code == 0, result.output
    assert "120 samples, 8 features" in result.stdout
    assert "participation ratio" in result.stdout


def test_spectrum_undefined_alpha_is_null_with_one_warning_line(tmp_path):
    path = tmp_path / "line.npy"
    np.save(path, np.outer(np.arange(20.0), np.ones(5)))  # rank 1: alpha is undefined
    result = invoke("spectrum", path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alpha"] is None
    assert result.stderr.startswith("warning: ")
    assert len(result.stderr.splitlines()) == 1


# ---- top level


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"repscope {repscope.__version__}"


def test_unknown_command_is_one_line():
    assert_one_line_error(invoke("dimension"), r"No such command 'dimension'")


# ---- demo


@pytest.fixture(scope="module")
def demo_json() -> dict:
    result = runner.invoke(app, ["dimension-demo", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_demo_json_has_the_datasets_with_finite_values(demo_json):
    assert [d["name"] for d in demo_json["datasets"]] == DEMO_NAMES
    ks = demo_json["k"]
    for entry in demo_json["datasets"]:
        assert [p["k"] for p in entry["profile"]] == ks
        for point in entry["profile"]:
            assert math.isfinite(point["lid"]) and point["lid"] > 0
        for key in ("participation_ratio", "effective_rank", "alpha", "seconds"):
            assert math.isfinite(entry[key]), (entry["name"], key)
        assert 1 <= entry["pca90"] <= entry["pca95"] <= entry["n_features"]
    by_name = {d["name"]: d for d in demo_json["datasets"]}
    assert by_name["digits"]["n_features"] == 64
    assert by_name["mnist"]["n_features"] == 784
    assert by_name["sphere-3"]["true_dim"] == 3
    assert by_name["mnist"]["true_dim"] is None


@pytest.mark.slow
def test_demo_hypercube_lid_is_ordered_by_dimension(demo_json):
    by_name = {d["name"]: d for d in demo_json["datasets"]}
    for i, k in enumerate(demo_json["k"]):
        lids = [by_name[f"hypercube-{d}"]["profile"][i]["lid"] for d in (2, 5, 10)]
        assert lids[0] < lids[1] < lids[2], (k, lids)
    # 2000 uniform points: the K=20 MLE of a 2-cube and a 3-sphere lie within 15 % of d
    assert by_name["hypercube-2"]["profile"][2]["lid"] == pytest.approx(2, rel=0.15)
    assert by_name["sphere-3"]["profile"][2]["lid"] == pytest.approx(3, rel=0.15)


def test_demo_table(monkeypatch):
    import repscope.demo as demo_module
    from repscope.datasets import make_hypercube

    small = [
        demo_module.DemoDataset("tiny-cube", "test cube", 2, lambda: make_hypercube(300, 2, 6)),
        demo_module.DemoDataset("tiny-real", "test data", None, lambda: _points(300)),
    ]
    monkeypatch.setattr(demo_module, "demo_datasets", lambda: small)
    result = invoke("dimension-demo")
    assert result.exit_code == 0, result.output
    for name in ("tiny-cube", "tiny-real", "PCA90", "true d"):
        assert name in result.stdout
