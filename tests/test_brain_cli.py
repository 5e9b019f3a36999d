"""`repscope brain-align`, `brain-lid` and `simulate-fmri`: JSON equals the library, the files
written, the planted truth recovered, and one-line errors for bad input.

The NSD commands run on the miniature NSD of ``nsd_fixture`` (subject 1: 36 images, 6 of them
shared; subject 2: 32) and the miniature Algonauts tree (15 images); ``simulate-fmri`` writes
small simulations driven by a random feature array (``--model FILE.npy``), so no network runs.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cli_helpers import assert_one_line_error, invoke
from repscope.alignment.brain import MIN_COMMON_IMAGES, brain_alignment
from repscope.dimension.brain import profile_distances, roi_dimension_profiles
from repscope.dimension.estimate import local_dimension
from repscope.io.algonauts import load_algonauts
from repscope.io.nsd import load_nsd
from repscope.io.simulate import simulate_nsd

VOXEL_FIELDS = ("columns", "coordinates", "r2", "pearson_r", "noise_ceiling", "alpha")


def _json(result) -> dict:
    """The one JSON object that is the whole of stdout."""
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout[:500]
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())
    return json.loads(lines[0])


def _nsd_ids(numbers) -> np.ndarray:
    return np.array([f"nsd-{int(i):05d}" for i in numbers])


def _quiet(function, *args, **kwargs):
    """Run a library call as the CLI does, its warnings (alpha at the grid edge) dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def _records(table: pd.DataFrame) -> list[dict]:
    """A table's rows as the JSON output holds them: NaN and <NA> as None, plain scalars."""
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    return [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()} for row in rows]


# ---- inputs: an embedding of the mini NSD's images, with ids, rows shuffled


@pytest.fixture(scope="module")
def emb(mini_nsd, tmp_path_factory) -> SimpleNamespace:
    """Every image subjects 1 and 2 saw, plus 5 images no subject saw, in shuffled order."""
    shown = {s: np.unique(mini_nsd.loaded_trials(s)) for s in (1, 2)}
    unseen = np.setdiff1d(
        np.arange(250, 300), np.concatenate(list(mini_nsd.trial_nsd_ids.values()))
    )
    numbers = np.random.default_rng(0).permutation(
        np.concatenate([np.union1d(*shown.values()), unseen[:5]])
    )
    ids = _nsd_ids(numbers)
    X = np.random.default_rng(1).standard_normal((len(ids), 12))
    path = tmp_path_factory.mktemp("emb") / "emb.npz"
    np.savez(path, X=X, ids=ids)
    shared = {s: int(np.isin(shown[s], mini_nsd.shared_nsd_ids).sum()) for s in shown}
    return SimpleNamespace(path=path, X=X, ids=ids, shown=shown, shared=shared)


def test_the_mini_nsd_has_enough_images_for_a_split(mini_nsd, emb):
    assert {s: len(v) for s, v in emb.shown.items()} == {1: 36, 2: 32}
    assert min(len(v) for v in emb.shown.values()) >= 3 * MIN_COMMON_IMAGES
    assert emb.shared == {1: 6, 2: 6}  # --test shared: 6 test images per subject


def _expected(root, emb, subjects, rois, **options) -> object:
    brains = [load_nsd(root, s, rois) for s in subjects]
    return _quiet(brain_alignment, emb.X, emb.ids, brains, **options)


# ---- brain-align


@pytest.mark.parametrize(
    ("subjects", "rois", "options"),
    [
        ((1,), ("EBA", "V1"), {}),
        ((1, 2), ("EBA", "floc-bodies", "nsdgeneral"), {"--test": "shared"}),
        ((2,), ("V2",), {"--pca": "none", "--seed": "7", "--test-size": "0.3"}),
        ((1, 2), ("prf-visualrois:hV4",), {"--pca": "4"}),
    ],
)
def test_brain_align_json_equals_library(mini_nsd, emb, subjects, rois, options):
    args = [f"--subject={s}" for s in subjects] + [f"--roi={r}" for r in rois]
    args += [f"{k}={v}" for k, v in options.items()]
    out = _json(invoke("brain-align", emb.path, "--nsd", mini_nsd.root, *args, "--json"))
    pca = options.get("--pca", "300")
    expected = _expected(
        mini_nsd.root,
        emb,
        subjects,
        rois,
        pca=None if pca == "none" else int(pca),
        test=options.get("--test", "random"),
        test_size=float(options.get("--test-size", 0.2)),
        random_state=int(options.get("--seed", 0)),
    )
    assert out == json.loads(json.dumps(expected.to_dict()))
    assert out["settings"]["pca"] == (None if pca == "none" else int(pca))

    # and the table against the planted design: one row per (subject, roi), then the pools
    table = pd.DataFrame(out["table"])
    keys = [(str(s), r) for s in subjects for r in rois] + [("all", r) for r in rois]
    assert list(zip(table["subject"], table["roi"], strict=True)) == keys
    for s in subjects:
        rows = table[table["subject"] == str(s)]
        n_images = len(emb.shown[s])
        assert (rows["n_train"] + rows["n_test"] == n_images).all()
        if options.get("--test") == "shared":
            assert (rows["n_test"] == emb.shared[s]).all()
        assert (rows["n_brain_only"] == 0).all()
        assert (rows["n_embedding_only"] == len(emb.ids) - n_images).all()
    pooled = table[table["subject"] == "all"]
    assert (pooled["n_subjects"] == len(subjects)).all()
    assert table["r2"].map(math.isfinite).all()


def test_brain_align_matches_rows_by_id_not_position(mini_nsd, emb, tmp_path):
    order = np.random.default_rng(5).permutation(len(emb.ids))
    np.savez(tmp_path / "shuffled.npz", X=emb.X[order], ids=emb.ids[order])
    args = ("--nsd", mini_nsd.root, "--roi", "EBA", "--pca", "none", "--json")
    a = _json(invoke("brain-align", emb.path, *args))
    b = _json(invoke("brain-align", tmp_path / "shuffled.npz", *args))
    assert a == b
    # rows paired with the wrong ids give another answer
    np.savez(tmp_path / "misnamed.npz", X=emb.X[order], ids=emb.ids)
    assert _json(invoke("brain-align", tmp_path / "misnamed.npz", *args))["table"] != a["table"]


def test_brain_align_out_writes_the_table_and_the_voxel_maps(mini_nsd, emb, tmp_path):
    out_dir = tmp_path / "results" / "run1"  # parents created
    result = invoke(
        "brain-align", emb.path, "--nsd", mini_nsd.root, "--subject", "1", "--subject", "2",
        "--roi", "EBA", "--roi", "V1", "--out", out_dir, "--json",
    )  # fmt: skip
    out = _json(result)
    assert sorted(p.name for p in out_dir.iterdir()) == ["brain_alignment.csv", "voxel_maps.npz"]
    assert sorted(p.name for p in out_dir.parent.iterdir()) == ["run1"]  # no temporary files
    expected = _expected(mini_nsd.root, emb, (1, 2), ("EBA", "V1"))
    assert out == json.loads(json.dumps(expected.to_dict()))

    csv = pd.read_csv(out_dir / "brain_alignment.csv", dtype={"subject": str})
    assert list(csv.columns) == list(expected.table.columns)
    assert list(csv["subject"]) == ["1", "1", "2", "2", "all", "all"]
    for column in ("n_voxels", "r2", "pearson_r", "noise_ceiling", "r2_normalized"):
        assert np.allclose(
            csv[column], expected.table[column].astype(float), rtol=1e-12, equal_nan=True
        )

    with np.load(out_dir / "voxel_maps.npz") as maps:
        names = {f"{s}/{r}/{f}" for s in (1, 2) for r in ("EBA", "V1") for f in VOXEL_FIELDS}
        assert set(maps.files) == names
        for (s, roi), vmap in expected.voxels.items():
            for field in VOXEL_FIELDS:
                saved = maps[f"{s}/{roi}/{field}"]
                assert np.array_equal(saved, getattr(vmap, field), equal_nan=True)
        # voxel coordinates are the ROI's voxels in the planted label volume
        eba = mini_nsd.rois[1]["floc-bodies"] == 1
        assert {tuple(c) for c in maps["1/EBA/coordinates"]} == {tuple(c) for c in np.argwhere(eba)}


def test_brain_align_table(mini_nsd, emb):
    result = invoke(
        "brain-align", emb.path, "--nsd", mini_nsd.root, "--roi", "EBA", "--roi", "V1",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "brain alignment of emb.npz" in text
    cells = [
        [c.strip() for c in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
    expected = _expected(mini_nsd.root, emb, (1,), ("EBA", "V1")).table
    assert [c[:3] for c in cells] == [
        [row["subject"], row["roi"], str(row["n_voxels"])] for row in expected.to_dict("records")
    ]
    for row, shown in zip(expected.to_dict("records"), cells, strict=True):
        assert shown[3:6] == [f"{row[c]:.3f}" for c in ("r2", "pearson_r", "noise_ceiling")]
    assert "r2: mean held-out R²" in result.stderr
    assert not any(line.startswith("error") for line in result.stderr.splitlines())


def test_brain_align_out_without_json_says_where(mini_nsd, emb, tmp_path):
    result = invoke(
        "brain-align", emb.path, "--nsd", mini_nsd.root, "--roi", "EBA", "--out", tmp_path / "o",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"written to {tmp_path / 'o'}" in result.stderr
    assert (tmp_path / "o" / "voxel_maps.npz").is_file()


def test_progress_bars_stay_off_stdout(mini_nsd, emb):
    result = invoke("brain-align", emb.path, "--nsd", mini_nsd.root, "--roi", "EBA")
    assert result.exit_code == 0, result.output
    assert "NSD subj01" not in result.stdout and "session/s" not in result.stdout


def test_brain_align_json_in_a_real_process(mini_nsd, emb):
    proc = subprocess.run(
        [sys.executable, "-m", "repscope.cli", "brain-align", str(emb.path), "--nsd",
         str(mini_nsd.root), "--roi", "EBA", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert [r["roi"] for r in json.loads(proc.stdout)["table"]] == ["EBA", "EBA"]
    assert all(line.startswith("warning: ") for line in proc.stderr.splitlines())


# ---- brain-align and brain-lid on the Algonauts 2023 layout


@pytest.fixture(scope="module")
def algonauts_emb(mini_algonauts, tmp_path_factory) -> SimpleNamespace:
    extra = np.setdiff1d(np.arange(300), mini_algonauts.nsd_ids)[-3:]
    numbers = np.concatenate([mini_algonauts.nsd_ids, extra])  # 15 in common, 3 not
    ids = _nsd_ids(numbers)
    X = np.random.default_rng(2).standard_normal((len(ids), 6))
    path = tmp_path_factory.mktemp("alg") / "alg.npz"
    np.savez(path, X=X, ids=ids)
    return SimpleNamespace(path=path, X=X, ids=ids)


@pytest.mark.parametrize("rois", [("EBA", "V1"), ()])
def test_brain_align_algonauts_equals_library(mini_algonauts, algonauts_emb, rois):
    assert len(mini_algonauts.nsd_ids) >= MIN_COMMON_IMAGES
    args = [f"--roi={r}" for r in rois]
    out = _json(
        invoke(
            "brain-align", algonauts_emb.path, "--algonauts", mini_algonauts.root, *args, "--json"
        )
    )
    # no --roi: every challenge vertex (Algonauts has no nsdgeneral labels)
    brain = load_algonauts(mini_algonauts.root, 1, list(rois) or None)
    expected = _quiet(brain_alignment, algonauts_emb.X, algonauts_emb.ids, brain)
    assert out == json.loads(json.dumps(expected.to_dict()))
    names = list(rois) or ["all-vertices"]
    assert [r["roi"] for r in out["table"]] == names * 2
    first = out["table"][0]
    assert first["n_train"] + first["n_test"] == 15 and first["n_embedding_only"] == 3
    if not rois:
        assert first["n_voxels"] == sum(f.shape[1] for f in mini_algonauts.fmri.values())
    assert first["noise_ceiling"] is None  # Algonauts publishes no ncsnr


def test_brain_lid_algonauts_default_is_every_vertex(mini_algonauts):
    out = _json(invoke("brain-lid", "--algonauts", mini_algonauts.root, "--k", "3,5", "--json"))
    assert {(r["roi"], r["k"]) for r in out["profiles"]} == {
        ("all-vertices", 3),
        ("all-vertices", 5),
    }
    assert out["profiles"][0]["n_images"] == 15


def test_brain_align_algonauts_errors(mini_algonauts, algonauts_emb, tmp_path):
    root = mini_algonauts.root
    emb = (algonauts_emb.path, "--json")
    assert_one_line_error(
        invoke("brain-align", *emb, "--algonauts", root, "--test", "shared"),
        r"subject 1 has 0 shared and 15 other images .* pass test='random'",
    )
    assert_one_line_error(
        invoke("brain-align", *emb, "--algonauts", root, "--subject", "2"),
        r"subject=2: no folder subjAA .* subjects present: subj01",
    )
    assert_one_line_error(
        invoke("brain-align", *emb, "--algonauts", root, "--roi", "nsdgeneral"),
        r"unknown ROI 'nsdgeneral'; available: prf-visualrois: V1v .*floc-bodies: EBA",
    )
    assert_one_line_error(
        invoke("brain-align", *emb, "--algonauts", tmp_path),
        rf"no folder subjAA for it under {re.escape(str(tmp_path))}; subjects present: none",
    )


# ---- brain-lid


@pytest.mark.parametrize(
    ("subjects", "rois", "k", "pca"),
    [((1,), ("EBA", "nsdgeneral"), (5, 10), "300"), ((1, 2), ("V1",), (4, 8, 16), "none")],
)
def test_brain_lid_json_equals_library(mini_nsd, subjects, rois, k, pca):
    args = [f"--subject={s}" for s in subjects] + [f"--roi={r}" for r in rois]
    result = invoke(
        "brain-lid", "--nsd", mini_nsd.root, *args, "--k", ",".join(map(str, k)), "--pca", pca,
        "--json",
    )  # fmt: skip
    out = _json(result)
    assert set(out) == {"profiles"}
    brains = [load_nsd(mini_nsd.root, s, rois) for s in subjects]
    n_pca = None if pca == "none" else int(pca)
    expected = roi_dimension_profiles(brains, list(rois), k=k, pca=n_pca)
    assert out["profiles"] == _records(expected)
    keys = [(str(s), r, kk) for s in subjects for r in rois for kk in k]
    assert [(p["subject"], p["roi"], p["k"]) for p in out["profiles"]] == keys
    for p in out["profiles"]:
        assert p["n_images"] == len(np.unique(mini_nsd.loaded_trials(int(p["subject"]))))
        assert math.isfinite(p["lid"]) and p["lid"] > 0


def test_brain_lid_default_roi_is_nsdgeneral(mini_nsd):
    out = _json(invoke("brain-lid", "--nsd", mini_nsd.root, "--k", "5,10", "--json"))
    assert {p["roi"] for p in out["profiles"]} == {"nsdgeneral"}
    assert out["profiles"][0]["n_voxels"] == int((mini_nsd.rois[1]["nsdgeneral"] > 0).sum())


def test_brain_lid_with_embedding_gives_distances(mini_nsd, emb):
    rois, k = ("EBA", "nsdgeneral"), (5, 10, 20)
    result = invoke(
        "brain-lid", "--nsd", mini_nsd.root, "--subject", "1", "--subject", "2",
        *[f"--roi={r}" for r in rois], "--k", "5,10,20", "--embedding", emb.path, "--json",
    )  # fmt: skip
    out = _json(result)
    brains = [load_nsd(mini_nsd.root, s, rois) for s in (1, 2)]
    profiles = roi_dimension_profiles(brains, list(rois), k=k)
    assert out["profiles"] == _records(profiles)
    # the model's profile on the images the brain data holds (the 5 unseen ones dropped)
    keep = np.isin(emb.ids, np.concatenate([b.stimulus_ids for b in brains]))
    assert (~keep).sum() == 5
    model = local_dimension(emb.X[keep], k=k)
    expected = profile_distances(model, profiles)
    assert out["distances"] == _records(expected)
    assert [(d["subject"], d["roi"]) for d in out["distances"]] == [
        ("1", "EBA"),
        ("1", "nsdgeneral"),
        ("2", "EBA"),
        ("2", "nsdgeneral"),
    ]
    for d in out["distances"]:
        assert d["n_common_k"] == 3 and 0 <= d["distance"] <= 2 * math.sqrt(3)


def test_brain_lid_table(mini_nsd, emb):
    result = invoke(
        "brain-lid", "--nsd", mini_nsd.root, "--roi", "EBA", "--roi", "V1", "--k", "5,10,20",
        "--embedding", emb.path, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout
    for word in ("K=5", "K=10", "K=20", "EBA", "V1", "model vs ROI profile"):
        assert word in text
    profiles = roi_dimension_profiles(load_nsd(mini_nsd.root, 1, ["EBA", "V1"]), k=(5, 10, 20))
    for value in profiles["lid"]:
        assert f"{value:.2f}" in text


# ---- simulate-fmri


def _features(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 16))


SMALL = ("--subjects", "1", "--image-size", "32")


def test_simulate_fmri_json_equals_library_and_loads(tmp_path):
    np.save(tmp_path / "feats.npy", _features(40))
    out_dir = tmp_path / "sim"
    result = invoke(
        "simulate-fmri", out_dir, "--images", "40", "--model", tmp_path / "feats.npy", *SMALL,
        "--repeats", "2", "--trials-per-session", "50", "--seed", "3", "--json",
    )  # fmt: skip
    out = _json(result)
    assert result.stderr == ""
    assert out["root"] == str(out_dir)
    expected = simulate_nsd(
        tmp_path / "lib", "builtin:digits", n_subjects=1, model=_features(40), n_images=40,
        repeats=2, trials_per_session=50, image_size=32, seed=3,
    )  # fmt: skip
    assert {k: v for k, v in out.items() if k != "root"} == json.loads(json.dumps(expected.summary))
    assert out["simulated"] is True and out["complete"] is True and out["seed"] == 3
    assert out["model"]["spec"] == "precomputed features" and out["design"]["n_sessions"] == 2

    data = load_nsd(out_dir, 1, ["EBA", "V1"])
    assert list(data.stimulus_ids) == list(_nsd_ids(range(40)))
    assert (data.n_repeats == 2).all() and data.source["simulated"] is True
    assert data.source["formats"] == ["nifti"] and data.source["sessions"] == [1, 2]
    again = load_nsd(expected.root, 1, ["EBA", "V1"])
    assert np.array_equal(data.responses, again.responses)


def test_simulate_fmri_hdf5(tmp_path):
    np.save(tmp_path / "feats.npy", _features(30))
    result = invoke(
        "simulate-fmri", tmp_path / "sim", "--images", "30", "--model", tmp_path / "feats.npy",
        *SMALL, "--format", "hdf5", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "simulated NSD written to" in result.stdout
    assert "--roi EBA" in result.stdout  # the next command to try
    data = load_nsd(tmp_path / "sim", 1, "nsdgeneral")
    assert data.source["formats"] == ["hdf5"] and data.n_images == 30
    assert not list((tmp_path / "sim").rglob("betas_session*.nii.gz"))


def test_simulate_fmri_refuses_a_folder_that_is_not_a_simulation(tmp_path):
    np.save(tmp_path / "feats.npy", _features(30))
    out_dir = tmp_path / "thesis"
    out_dir.mkdir()
    (out_dir / "chapter1.tex").write_text("keep me")
    result = invoke(
        "simulate-fmri", out_dir, "--images", "30", "--model", tmp_path / "feats.npy", *SMALL,
        "--overwrite", "--json",
    )  # fmt: skip
    assert_one_line_error(result, r"is not empty and holds no simulation record")
    assert [p.name for p in out_dir.iterdir()] == ["chapter1.tex"]


def test_simulate_fmri_overwrites_only_with_overwrite(tmp_path):
    np.save(tmp_path / "feats.npy", _features(30))
    args = ("--images", "30", "--model", tmp_path / "feats.npy", *SMALL, "--json")
    assert invoke("simulate-fmri", tmp_path / "sim", *args).exit_code == 0
    before = (tmp_path / "sim" / "simulation.json").read_bytes()
    assert_one_line_error(
        invoke("simulate-fmri", tmp_path / "sim", *args, "--seed", "1"),
        r"holds a previous simulation; pass overwrite=True",
    )
    assert (tmp_path / "sim" / "simulation.json").read_bytes() == before
    out = _json(invoke("simulate-fmri", tmp_path / "sim", *args, "--seed", "1", "--overwrite"))
    assert out["seed"] == 1


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> SimpleNamespace:
    """200 simulated images whose EBA the features in ``feats.npy`` drive, via the CLI."""
    folder = tmp_path_factory.mktemp("sim200")
    features = _features(200, seed=11)
    np.save(folder / "feats.npy", features)
    result = invoke(
        "simulate-fmri", folder / "nsd", "--images", "200", "--model", folder / "feats.npy",
        *SMALL, "--json",
    )  # fmt: skip
    _json(result)
    ids = _nsd_ids(range(200))
    np.savez(folder / "model.npz", X=features, ids=ids)
    other = np.random.default_rng(99).standard_normal((200, 16))
    np.savez(folder / "other.npz", X=other, ids=ids)
    return SimpleNamespace(
        root=folder / "nsd", model=folder / "model.npz", other=folder / "other.npz"
    )


def test_brain_align_recovers_the_generating_model(simulated):
    def eba(path):
        out = _json(invoke("brain-align", path, "--nsd", simulated.root, "--roi", "EBA", "--json"))
        row = out["table"][0]
        assert row["r2"] <= row["noise_ceiling"] + 0.05  # nothing beats the ceiling
        return row["r2_normalized"]

    # measured with feature seeds 0-3 and 11-13: 0.66-0.78 for the generating features,
    # -0.13 to -0.07 for unrelated ones
    assert eba(simulated.model) > 0.5
    assert eba(simulated.other) < 0.15


# ---- bad input: exit 2, one `error:` line on stderr, nothing on stdout, nothing written


@pytest.fixture
def bad(mini_nsd, emb, tmp_path) -> SimpleNamespace:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 5))
    np.save(tmp_path / "plain.npy", X)
    nan = emb.X.copy()
    nan[[2, 9], 0] = np.nan
    np.savez(tmp_path / "nan.npz", X=nan, ids=emb.ids)
    np.savez(tmp_path / "other_ids.npz", X=X, ids=np.array([f"img-{i}" for i in range(40)]))
    np.savez(tmp_path / "int_ids.npz", X=X, ids=np.arange(40))
    few = emb.ids[np.isin(emb.ids, _nsd_ids(emb.shown[1]))][: MIN_COMMON_IMAGES - 1]
    np.savez(tmp_path / "few.npz", X=X[: len(few)], ids=few)
    (tmp_path / "text.npy").write_text("1 2 3\n4 5 6\n")
    feats_nan = _features(30)
    feats_nan[4, 2] = np.nan
    np.save(tmp_path / "feats_nan.npy", feats_nan)
    np.save(tmp_path / "feats.npy", _features(30))
    np.save(tmp_path / "feats_short.npy", _features(29))
    (tmp_path / "empty").mkdir()
    return SimpleNamespace(tmp=tmp_path, nsd=mini_nsd.root, emb=emb.path)


ALIGN_CASES = {
    "no NSD files": (
        lambda b: [b.emb, "--nsd", b.tmp / "empty"],
        lambda b: (
            re.escape(str(b.tmp / "empty/nsddata/experiments/nsd/nsd_expdesign.mat")) + " not found"
        ),
    ),
    "subject without files": (
        lambda b: [b.emb, "--nsd", b.nsd, "--subject", "3"],
        lambda b: re.escape(str(b.nsd / "nsddata/ppdata/subj03/func1pt8mm/roi")) + " not found",
    ),
    "unknown roi": (
        lambda b: [b.emb, "--nsd", b.nsd, "--roi", "EBA", "--roi", "FFA-9"],
        r"unknown ROI 'FFA-9'; available: prf-visualrois: V1v V1d .* floc-bodies: EBA FBA-1",
    ),
    "roi of another subject only": (
        lambda b: [b.emb, "--nsd", b.nsd, "--subject", "2", "--subject", "1", "--roi", "LO1"],
        r"unknown ROI 'LO1'",  # only subject 2 has the Kastner2015 atlas
    ),
    "subject out of range": (
        lambda b: [b.emb, "--nsd", b.nsd, "--subject", "9"],
        r"subject=9 is out of range; nsd_expdesign\.mat has 3 subjects, pass an int from 1 to 3",
    ),
    "subject zero": (lambda b: [b.emb, "--nsd", b.nsd, "--subject", "0"], r"subject=0"),
    "subject twice": (
        lambda b: [b.emb, "--nsd", b.nsd, "--subject", "1", "--subject", "1"],
        r"repeats a subject",
    ),
    "no ids": (
        lambda b: [b.tmp / "plain.npy", "--nsd", b.nsd],
        r"plain\.npy has no stimulus ids; .*pass an \.npz with X and ids",
    ),
    "ids in common with none": (
        lambda b: [b.tmp / "other_ids.npz", "--nsd", b.nsd],
        r"the embedding's ids \(e\.g\. 'img-0'\) and subject 1's images \(e\.g\. 'nsd-\d{5}'\) "
        r"have none in common",
    ),
    "integer ids": (lambda b: [b.tmp / "int_ids.npz", "--nsd", b.nsd], r"have none in common"),
    "too few in common": (
        lambda b: [b.tmp / "few.npz", "--nsd", b.nsd],
        rf"subject 1 shares only {MIN_COMMON_IMAGES - 1} images with the embedding; at least "
        rf"{MIN_COMMON_IMAGES} are needed",
    ),
    "nan in embedding": (
        lambda b: [b.tmp / "nan.npz", "--nsd", b.nsd],
        r"nan\.npz\['X'\] contains NaN or infinite values in 2 of \d+ rows",
    ),
    "missing embedding": (
        lambda b: [b.tmp / "absent.npz", "--nsd", b.nsd],
        r"absent\.npz' does not exist",
    ),
    "neither dataset": (lambda b: [b.emb], r"pass exactly one of --nsd ROOT or --algonauts ROOT"),
    "both datasets": (
        lambda b: [b.emb, "--nsd", b.nsd, "--algonauts", b.tmp],
        r"pass exactly one of --nsd ROOT or --algonauts ROOT",
    ),
    "pca word": (lambda b: [b.emb, "--nsd", b.nsd, "--pca", "all"], r"--pca 'all' is not a"),
    "pca zero": (lambda b: [b.emb, "--nsd", b.nsd, "--pca", "0"], r"--pca '0' is not a positive"),
    "bad test": (
        lambda b: [b.emb, "--nsd", b.nsd, "--test", "heldout"],
        r"--test 'heldout' is not known; pass one of random, shared",
    ),
    "bad test size": (
        lambda b: [b.emb, "--nsd", b.nsd, "--test-size", "1.5"],
        r"test_size=1\.5 must be in \(0, 1\)",
    ),
    "bad betas": (
        lambda b: [b.emb, "--nsd", b.nsd, "--betas", "betas_assumehrf"],
        r"func1pt8mm/betas_assumehrf not found",
    ),
    "bad device": (lambda b: [b.emb, "--nsd", b.nsd, "--device", "tpu"], r"device='tpu'"),
    "subject not a number": (
        lambda b: [b.emb, "--nsd", b.nsd, "--subject", "one"],
        r"Invalid value for '--subject'.*integer",
    ),
}


@pytest.mark.parametrize("case", ALIGN_CASES, ids=list(ALIGN_CASES))
def test_brain_align_bad_input(bad, case):
    args, match = ALIGN_CASES[case]
    out_dir = bad.tmp / "out"
    result = invoke("brain-align", *args(bad), "--out", out_dir, "--json")
    assert_one_line_error(result, match(bad) if callable(match) else match)
    assert not out_dir.exists()
    # and the same line without --json
    plain = invoke("brain-align", *args(bad), "--out", out_dir, "--no-progress")
    assert_one_line_error(plain, match(bad) if callable(match) else match)
    assert not out_dir.exists()


def test_brain_align_missing_ncsnr_is_named(mini_nsd_copy, emb, tmp_path):
    path = mini_nsd_copy.layout.ncsnr(1)
    path.unlink()
    result = invoke(
        "brain-align", emb.path, "--nsd", mini_nsd_copy.root, "--out", tmp_path / "out", "--json"
    )
    assert_one_line_error(result, re.escape(str(path)) + " not found")
    assert not (tmp_path / "out").exists()


def test_brain_align_out_that_is_a_file(mini_nsd, emb, tmp_path):
    (tmp_path / "results").write_text("not a folder")
    result = invoke("brain-align", emb.path, "--nsd", mini_nsd.root, "--out", tmp_path / "results")
    assert_one_line_error(result, r"--out .*results is a file; pass a folder")
    assert (tmp_path / "results").read_text() == "not a folder"


LID_CASES = {
    "no NSD files": (
        lambda b: ["--nsd", b.tmp / "empty"],
        lambda b: re.escape(str(b.tmp / "empty/nsddata/experiments/nsd/nsd_expdesign.mat")),
    ),
    "unknown roi": (
        lambda b: ["--nsd", b.nsd, "--roi", "FFA-9"],
        r"unknown ROI 'FFA-9'; available: prf-visualrois: V1v",
    ),
    "subject out of range": (lambda b: ["--nsd", b.nsd, "--subject", "9"], r"subject=9 is out"),
    "neither dataset": (lambda b: [], r"pass exactly one of --nsd ROOT or --algonauts ROOT"),
    "both datasets": (
        lambda b: ["--nsd", b.nsd, "--algonauts", b.tmp],
        r"pass exactly one of --nsd ROOT or --algonauts ROOT",
    ),
    "bad k": (lambda b: ["--nsd", b.nsd, "--k", "5,x"], r"--k '5,x' is not a comma-separated"),
    "k above the images": (
        lambda b: ["--nsd", b.nsd, "--k", "5,40"],
        r"k=40 must be < the number of distinct points n_distinct=36",
    ),
    "bad pca": (lambda b: ["--nsd", b.nsd, "--pca", "-3"], r"--pca '-3' is not a positive"),
    "bad estimator": (
        lambda b: ["--nsd", b.nsd, "--estimator", "levina"],
        r"estimator='levina' is not known",
    ),
    "embedding ids in common with none": (
        lambda b: ["--nsd", b.nsd, "--embedding", b.tmp / "other_ids.npz"],
        r"other_ids\.npz shares no stimulus ids with the brain data \(e\.g\. 'img-0' vs "
        r"'nsd-\d{5}'\)",
    ),
    "nan in embedding": (
        lambda b: ["--nsd", b.nsd, "--embedding", b.tmp / "nan.npz"],
        r"nan\.npz\['X'\] contains NaN",
    ),
    "one common k": (
        lambda b: ["--nsd", b.nsd, "--k", "5", "--embedding", b.emb],
        r"share 1 scale\(s\) \[5\]; pass profiles with at least 2 common K",
    ),
}


@pytest.mark.parametrize("case", LID_CASES, ids=list(LID_CASES))
def test_brain_lid_bad_input(bad, case):
    args, match = LID_CASES[case]
    args = args(bad)
    if "--k" not in args:
        args += ["--k", "5,10"]
    for mode in ("--json", "--no-progress"):
        result = invoke("brain-lid", *args, mode)
        assert_one_line_error(result, match(bad) if callable(match) else match)


SIMULATE_CASES = {
    "model npy missing": (
        lambda b: ["--model", b.tmp / "absent.npy"],
        r"--model .*absent\.npy: no such \.npy file; pass a features file or a model spec",
    ),
    "model npy is text": (
        lambda b: ["--model", b.tmp / "text.npy"],
        r"text\.npy is not a NumPy \.npy file",
    ),
    "model npy with NaN": (
        lambda b: ["--model", b.tmp / "feats_nan.npy"],
        r"contains NaN or infinite values in 1 of 30 rows",
    ),
    "model rows differ from images": (
        lambda b: ["--model", b.tmp / "feats_short.npy"],
        r"model features have 29 rows but 30 images",
    ),
    "bad format": (
        lambda b: ["--model", b.tmp / "feats.npy", "--format", "mgh"],
        r"--format 'mgh' is not known; pass one of nii\.gz, hdf5",
    ),
    "too few images": (
        lambda b: ["--model", b.tmp / "feats.npy", "--images", "5"],
        r"n_images=5 is not an integer >= 20",
    ),
    "too many subjects": (
        lambda b: ["--model", b.tmp / "feats.npy", "--subjects", "9"],
        r"n_subjects=9 is not an integer in 1\.\.8",
    ),
    "unknown stimuli": (
        lambda b: ["--model", b.tmp / "feats.npy", "--stimuli", "builtin:digitz"],
        r"unknown built-in stimulus set 'digitz'",
    ),
}


@pytest.mark.parametrize("case", SIMULATE_CASES, ids=list(SIMULATE_CASES))
def test_simulate_fmri_bad_input(bad, case):
    args, match = SIMULATE_CASES[case]
    out_dir = bad.tmp / "sim"
    result = invoke("simulate-fmri", out_dir, "--images", "30", "--image-size", "32", *args(bad))
    assert_one_line_error(result, match)
    assert not out_dir.exists()
