"""`repscope align`: JSON equals the library, rows matched on ids, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import repscope
from repscope.alignment.methods import METHODS, align
from repscope.cli import app
from repscope.io.arrays import match_rows

runner = CliRunner()


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 8))
    Y = X @ rng.standard_normal((8, 6)) + 0.5 * rng.standard_normal((120, 6))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    return tmp_path, X, Y


def run(*args):
    return runner.invoke(app, ["align", *map(str, args)])


@pytest.mark.parametrize("method", METHODS)
def test_json_equals_library(pair, method):
    path, X, Y = pair
    res = run(path / "x.npy", path / "y.npy", "--method", method, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["method"] == method and out["n_stimuli"] == 120
    assert out["score"] == pytest.approx(align(X, Y, method)["score"], rel=1e-12)


def test_ridge_fields_and_values(pair):
    path, X, Y = pair
    out = json.loads(run(path / "x.npy", path / "y.npy", "--json").stdout.splitlines()[-1])
    ref = repscope.ridge_alignment(X, Y)
    assert (out["n_train"], out["n_test"]) == (96, 24)
    assert out["score"] == pytest.approx(ref.score, rel=1e-12)
    assert out["alpha_median"] == pytest.approx(float(np.median(ref.alpha)))


def test_rows_matched_on_ids(tmp_path, pair):
    _, X, Y = pair
    rng = np.random.default_rng(1)
    ids = np.arange(1000, 1120)
    perm = rng.permutation(120)[:100]  # Y: a shuffled subset of the stimuli
    np.savez(tmp_path / "xi.npz", X=X, ids=ids)
    np.savez(tmp_path / "yi.npz", X=Y[perm], ids=ids[perm])
    res = run(tmp_path / "xi.npz", tmp_path / "yi.npz", "--method", "cka", "--json")
    out = json.loads(res.stdout.splitlines()[-1])
    keep = np.isin(ids, ids[perm])
    assert out["n_stimuli"] == 100
    assert out["score"] == pytest.approx(repscope.linear_cka(X[keep], Y[keep]), rel=1e-12)
    Xm, Ym, matched = match_rows(X, ids, Y[perm], ids[perm])
    np.testing.assert_array_equal(matched, ids[keep])
    np.testing.assert_array_equal(Xm, X[keep])
    np.testing.assert_array_equal(Ym, Y[keep])


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        ("rows", [], "X has 120 rows but Y has 50"),
        ("disjoint", [], "have none in common"),
        ("one-ids", [], "only X carries stimulus ids"),
        ("same", ["--method", "mutual-knn", "--k", "500"], "k=500 must be <"),
        ("same", ["--method", "nope"], "--method 'nope' is not known"),
        ("nan", [], "NaN or infinite values in 1 of 120 rows"),
    ],
)
def test_bad_input_one_line(tmp_path, pair, make, args, message):
    _, X, Y = pair
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    ids = np.arange(120)
    if make == "rows":
        np.savez(a, X=X)
        np.savez(b, X=Y[:50])
    elif make == "disjoint":
        np.savez(a, X=X, ids=ids)
        np.savez(b, X=Y, ids=ids + 1000)
    elif make == "one-ids":
        np.savez(a, X=X, ids=ids)
        np.savez(b, X=Y)
    elif make == "nan":
        Xn = X.copy()
        Xn[3, 0] = np.nan
        np.savez(a, X=Xn)
        np.savez(b, X=Y)
    else:
        np.savez(a, X=X)
        np.savez(b, X=Y)
    res = run(a, b, *args, "--json")
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in res.output
