"""Bad input across the CLI and the study config: one table of error paths, one test per row.

Every row writes its bad files into the test's folder, runs one command in process and checks
the contract of :mod:`cli_helpers`: exit status 2, nothing on stdout, exactly one ``error:``
line on stderr that names the problem and, after ``"; "``, the fix, and no traceback. It also
checks that the failed command wrote nothing into the test's folder: no ``measures.parquet``,
``report.html``, CSV, ``.npz``, ``parts/`` folder, nor any other new path.

The study rows (``repscope run``) share one small config: three mini-zoo members, 40 of
scikit-learn's digits, K = 5 and 10; each row changes one line of it, or adds the mini NSD of
``nsd_fixture`` as its ``[brain]`` (damaged, in a private copy, where a row needs missing
files). Every error is found before a model is trained or an image embedded, so the whole
table runs in seconds.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, invoke

MEMBERS = ["minizoo:mlp-w64-d1-n500", "minizoo:cnn-w8-d1-n500", "minizoo:mlp-w128-d1-n1000"]

CONFIG = f"""\
[study]
name = "bad input"
question = "Does every bad input fail at once?"
output = "out"
device = "cpu"

[models]
specs = {json.dumps(MEMBERS)}

[stimuli]
source = "builtin:digits"
n_images = 40

[preprocessing]
pca = 5

[dimension]
k = [5, 10]

[alignment]
k = 10

[statistics]
bootstrap = 10
permutations = 10
"""

BRAIN = """
[brain]
nsd = {root}
subjects = [1]
rois = ["EBA", "V1"]
test = "random"
pca = 5
k = 10
"""

#: The NSD images as the study's stimuli, instead of 40 digits.
NSD_STIMULI = ('source = "builtin:digits"\nn_images = 40', 'source = "nsd"')

#: The tests run as root, whom chmod stops from nothing: an unwritable place is a path under
#: a regular file, or under /proc, which refuses new entries even to root.
PROC = Path("/proc")
NEEDS_PROC = (pytest.mark.skipif(not (PROC / "self").is_dir(), reason="needs Linux /proc"),)

#: Options every row of a command gets: no progress display, the session's cache.
QUIET = ("run", "extract", "brain-align", "brain-lid")
CACHED = ("run", "extract")


@dataclass
class Env:
    """The test's folder and the shared, read-only mini NSD root."""

    tmp: Path
    nsd: Path
    line: int = 0  # the config line a row changed, for "study.toml:LINE:" messages

    def study(self, *changes: tuple[str, str], nsd: Path | None = None) -> Path:
        """The base config with each ``(old, new)`` replaced; ``nsd`` adds a [brain] table."""
        text = CONFIG if nsd is None else CONFIG + BRAIN.format(root=json.dumps(str(nsd)))
        for old, new in changes:
            assert text.count(old) == 1, old  # the row really changes the config
            self.line = self.line or text[: text.index(old)].count("\n") + 1
            text = text.replace(old, new)
        path = self.tmp / "study.toml"
        path.write_text(text)
        return path

    def source(self, source: Path) -> Path:
        """The base config with ``source`` as its stimuli."""
        return self.study(('"builtin:digits"', json.dumps(str(source))))

    def damaged_nsd(self, *patterns: str) -> Path:
        """A private copy of the mini NSD without the files matching ``patterns``."""
        root = self.tmp / "nsd"
        shutil.copytree(self.nsd, root)
        for pattern in patterns:
            found = list(root.rglob(pattern))
            assert found, pattern
            for path in found:
                path.unlink()
        return root

    def file(self) -> Path:
        """A regular file where a folder is expected."""
        path = self.tmp / "afile"
        path.write_text("not a folder\n")
        return path

    def folder(self, *files: str) -> Path:
        """A folder ``images/`` holding ``files`` (text, not images)."""
        path = self.tmp / "images"
        path.mkdir()
        for name in files:
            (path / name).write_text("no image here\n")
        return path

    def array(self, name: str, X: np.ndarray, ids: Any = None) -> Path:
        """``X`` as ``name`` (.npy, or .npz with ``ids``)."""
        path = self.tmp / name
        if path.suffix == ".npz":
            np.savez(path, X=X, ids=ids)
        else:
            np.save(path, X)
        return path

    def points(self, name: str = "points.npy", n: int = 60, nan: bool = False) -> Path:
        """``n`` Gaussian points in R^8 (an .npz gets NSD ids); ``nan``: one value NaN."""
        X = np.random.default_rng(0).standard_normal((n, 8))
        if nan:
            X[5, 1] = np.nan
        return self.array(name, X, nsd_ids(n))

    def embedding(self, name: str, ids: np.ndarray) -> Path:
        """An .npz of one random row per id."""
        return self.array(name, np.random.default_rng(1).standard_normal((len(ids), 8)), ids)

    def nan_images(self) -> Path:
        """40 float images in [0, 1], one pixel NaN."""
        images = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
        images[3, 2, 2] = np.nan
        return self.array("images.npy", images)


def nsd_ids(n: int) -> np.ndarray:
    return np.array([f"nsd-{i:05d}" for i in range(n)])


NSD_IDS = nsd_ids(300)  # every image of the mini NSD
OTHER_IDS = np.array([f"img-{i}" for i in range(300)])
DUPLICATE_IDS = np.concatenate([nsd_ids(1), nsd_ids(299)])  # nsd-00000 twice
DIGITS = ("--stimuli", "builtin:digits")
MEMBER = MEMBERS[0]


@dataclass(frozen=True)
class Case:
    """One row: ``setup(env)`` writes the bad files and returns the arguments after the
    command; ``match`` (a regex, or a function of the env giving one) must find the problem
    and the fix in the error line."""

    id: str
    command: str  # as the table shows it
    problem: str  # the issue's error path
    setup: Callable[[Env], list[Any]]
    match: str | Callable[[Env], str]
    marks: tuple[Any, ...] = ()


def _run(*changes: tuple[str, str]) -> Callable[[Env], list[Any]]:
    return lambda env: [env.study(*changes)]


def _run_nsd(*changes: tuple[str, str], damage: tuple[str, ...] = ()) -> Callable:
    def setup(env: Env) -> list[Any]:
        return [env.study(*changes, nsd=env.damaged_nsd(*damage) if damage else env.nsd)]

    return setup


def _brain_align(ids: np.ndarray = NSD_IDS, *extra: Any, damage: tuple[str, ...] = ()) -> Callable:
    def setup(env: Env) -> list[Any]:
        root = env.damaged_nsd(*damage) if damage else env.nsd
        return [env.embedding("emb.npz", ids), "--nsd", root, *extra]

    return setup


def _brain_align_out(out: Callable[[Env], Path]) -> Callable[[Env], list[Any]]:
    return lambda env: [env.embedding("emb.npz", NSD_IDS), "--nsd", env.nsd, "--out", out(env)]


def _output_under_a_file(env: Env) -> list[Any]:
    env.file()
    return [env.study(('output = "out"', 'output = "afile/out"'))]


def _line(pattern: str) -> Callable[[Env], str]:
    """``study.toml:LINE: pattern``, LINE the line the row changed."""
    return lambda env: rf"study\.toml:{env.line}: {pattern}"


RUN = "run CONFIG"
BRAIN_ALIGN = "brain-align EMB.npz --nsd ROOT"

CASES = [
    # ---- unknown model (and other unknown names), with the near match suggested
    Case(
        "run: minizoo name typo",
        RUN,
        "unknown model",
        _run(("mlp-w64-d1-n500", "mlp-w64-d1-n50")),
        r"minizoo model 'mlp-w64-d1-n50' is not known; did you mean mlp-w64-d1-n500",
    ),
    Case(
        "run: timm name typo",
        RUN,
        "unknown model",
        _run((f'"{MEMBER}", ', f'"{MEMBER}", "timm:convnext_atoo", ')),
        r"'convnext_atoo' is not a timm model \(did you mean 'convnext_atto'.*\); see timm",
    ),
    Case(
        "run: source typo",
        RUN,
        "unknown model",
        _run(('"minizoo:cnn-w8-d1-n500"', '"timmm:resnet18"')),
        _line(r"models\.specs\[1\]: unknown model source 'timmm'.*\(did you mean 'timm'\?\)"),
    ),
    Case(
        "run: local model file missing",
        RUN,
        "unknown model",
        lambda env: [env.study(('"minizoo:cnn-w8-d1-n500"', f'"local:{env.tmp}/net.pt"'))],
        r"local model file .*net\.pt does not exist; pass a TorchScript archive",
    ),
    Case(
        "extract: minizoo name typo",
        "extract SPEC --stimuli builtin:digits",
        "unknown model",
        lambda env: ["minizoo:mlp-w64-d1-n50", *DIGITS],
        r"minizoo model 'mlp-w64-d1-n50' is not known; did you mean mlp-w64-d1-n500",
    ),
    Case(
        "extract: timm name typo",
        "extract SPEC --random-weights --stimuli builtin:digits",
        "unknown model",
        lambda env: ["timm:convnext_atoo", "--random-weights", *DIGITS],
        r"'convnext_atoo' is not a timm model \(did you mean 'convnext_atto'",
    ),
    Case(
        "extract: source typo",
        "extract SPEC --stimuli builtin:digits",
        "unknown model",
        lambda env: ["timmm:resnet18", *DIGITS],
        r"unknown model source 'timmm'.*\(did you mean 'timm'\?\)",
    ),
    Case(
        "align: method typo",
        "align X Y --method ridg",
        "unknown model",
        lambda env: [env.points(), env.points(), "--method", "ridg"],
        r"--method 'ridg' is not known \(did you mean 'ridge'\?\); pass one of ridge, cka",
    ),
    Case(
        "brain-align: ROI typo",
        BRAIN_ALIGN + " --roi EBB",
        "unknown model",
        _brain_align(NSD_IDS, "--roi", "EBB"),
        r"unknown ROI 'EBB'; available: .*floc-bodies: EBA .*\(did you mean 'EBA'\?\)",
    ),
    # ---- missing NSD files
    Case(
        "run: NSD root without nsd_expdesign.mat",
        RUN + " ([brain] nsd)",
        "missing NSD files",
        _run_nsd(damage=("nsd_expdesign.mat",)),
        r"nsddata/experiments/nsd/nsd_expdesign\.mat not found: .*; download it there",
    ),
    Case(
        "run: NSD root that does not exist",
        RUN + " ([brain] nsd)",
        "missing NSD files",
        lambda env: [env.study(nsd=env.tmp / "absent")],
        r"absent/nsddata/experiments/nsd/nsd_expdesign\.mat not found: .*; download it there",
    ),
    Case(
        "run: NSD betas session missing",
        RUN + " ([brain] nsd)",
        "missing NSD files",
        _run_nsd(damage=("betas_session02.*",)),
        r"subj01/.*/betas_session02\.nii\.gz not found \(sessions must run 1\.\.3 without "
        r"gaps.*\); download it or remove the later sessions",
    ),
    Case(
        "run: source nsd without nsd_stimuli.hdf5",
        RUN + " ([brain] nsd)",
        "missing NSD files",
        _run_nsd(NSD_STIMULI, damage=("nsd_stimuli.hdf5",)),
        r"stimulus source .*nsd_stimuli\.hdf5 does not exist; pass an image folder",
    ),
    Case(
        "brain-align: NSD root without nsd_expdesign.mat",
        BRAIN_ALIGN,
        "missing NSD files",
        _brain_align(damage=("nsd_expdesign.mat",)),
        r"nsd_expdesign\.mat not found: .*; download it there or pass the NSD root",
    ),
    Case(
        "brain-align: NSD betas session missing",
        BRAIN_ALIGN,
        "missing NSD files",
        _brain_align(damage=("betas_session02.*",)),
        r"betas_session02\.nii\.gz not found .*; download it or remove the later sessions",
    ),
    Case(
        "brain-lid: NSD root without any betas",
        "brain-lid --nsd ROOT",
        "missing NSD files",
        lambda env: ["--nsd", env.damaged_nsd("betas_session*")],
        r"betas_fithrf_GLMdenoise_RR holds no betas_sessionNN\.nii\.gz or \.hdf5 files; "
        r"download NSD's session betas there",
    ),
    # ---- mismatched stimulus ids
    Case(
        "run: stimuli the brain never saw",
        RUN + " ([brain] nsd)",
        "mismatched ids",
        _run_nsd(),
        r"\[stimuli\] source 'builtin:digits' shares 0 images with subject 1's brain data "
        r"\(ids e\.g\. 'digits-0000' vs 'nsd-\d{5}'\); .*write source = \"nsd\"",
    ),
    Case(
        "align: ids in common with none",
        "align X.npz Y.npz",
        "mismatched ids",
        lambda env: [env.embedding("x.npz", NSD_IDS), env.embedding("y.npz", OTHER_IDS)],
        r"X's 300 ids and Y's 300 ids have none in common; pass embeddings of the same stimuli",
    ),
    Case(
        "brain-align: ids in common with none",
        BRAIN_ALIGN,
        "mismatched ids",
        _brain_align(OTHER_IDS),
        r"the embedding's ids \(e\.g\. 'img-0'\) and subject 1's images .* have none in common; ",
    ),
    Case(
        "brain-lid: embedding ids in common with none",
        "brain-lid --nsd ROOT --embedding EMB.npz",
        "mismatched ids",
        lambda env: ["--nsd", env.nsd, "--embedding", env.embedding("emb.npz", OTHER_IDS)],
        r"emb\.npz shares no stimulus ids with the brain data .*; embed the same NSD images",
    ),
    # ---- duplicate points, ids and models
    Case(
        "run: model listed twice",
        RUN,
        "duplicates",
        _run(('"minizoo:cnn-w8-d1-n500"', f'"{MEMBER}"')),
        _line(rf"models\.specs\[1\]: '{MEMBER}' is listed twice; keep it once"),
    ),
    Case(
        "align: duplicate ids",
        "align X.npz Y.npz",
        "duplicates",
        lambda env: [env.embedding("x.npz", NSD_IDS), env.embedding("y.npz", DUPLICATE_IDS)],
        r"ids in y\.npz are not unique \(1 repeated, e\.g\. 'nsd-00000'\); give every row its own",
    ),
    Case(
        "brain-align: duplicate ids",
        BRAIN_ALIGN,
        "duplicates",
        _brain_align(DUPLICATE_IDS),
        r"ids in emb\.npz are not unique \(1 repeated, e\.g\. 'nsd-00000'\); give every row",
    ),
    Case(
        "lid: duplicate points with --duplicates raise",
        "lid X.npy --duplicates raise",
        "duplicates",
        lambda env: [
            env.array("dup.npy", np.vstack([np.eye(8), np.eye(8)[:2]])),
            "--duplicates",
            "raise",
            "--k",
            "3",
        ],
        r"X has 2 duplicate rows \(of 10\); remove them or pass duplicates='drop'",
    ),
    # ---- bad TOML
    Case(
        "run: TOML syntax error",
        RUN,
        "bad TOML",
        _run(("pca = 5", "pca = = 5")),
        _line(r"TOML syntax error at column \d+: .*; fix the syntax there"),
    ),
    Case(
        "run: unknown table",
        RUN,
        "bad TOML",
        _run(("[statistics]", "[statistcs]")),
        _line(r"unknown section \[statistcs\]; did you mean \[statistics\]\?"),
    ),
    Case(
        "run: unknown key",
        RUN,
        "bad TOML",
        _run(("k = [5, 10]", "kk = [5, 10]")),
        _line(r"unknown key 'kk' in \[dimension\]; did you mean 'k'\?"),
    ),
    Case(
        "run: wrong type",
        RUN,
        "bad TOML",
        _run(("n_images = 40", 'n_images = "40"')),
        _line(r"stimuli\.n_images is a string \(\"40\"\), expected an integer; write an integer"),
    ),
    Case(
        "run: [generalization] data typo",
        RUN,
        "bad TOML",
        _run(("[statistics]", '[generalization]\ndata = "builtin:mnsit"\n\n[statistics]')),
        lambda env: (  # the key sits one line below the table header the row adds
            rf"study\.toml:{env.line + 1}: .*'builtin:mnsit' is not a known labelled stimulus "
            r"set.*write one of"
        ),
    ),
    Case(
        "run: [generalization] n_train above the MNIST pool",
        RUN,
        "K too large",
        _run(("[statistics]", "[generalization]\nn_train = 4500\n\n[statistics]")),
        r"\[generalization\] n_train = 4500 exceeds the 4000 training images of builtin:mnist's "
        r"split; pass n_train <= 4000",
    ),
    Case(
        "run: [weights] task typo",
        RUN,
        "bad TOML",
        _run(("[statistics]", '[weights]\ntask = "digts"\n\n[statistics]')),
        lambda env: (
            rf"study\.toml:{env.line + 1}: .*'digts' is not a known fine-tuning task.*write one of"
        ),
    ),
    Case(
        "run: [weights] rank not among ranks",
        RUN,
        "bad TOML",
        _run(("[statistics]", "[weights]\nrank = 12\n\n[statistics]")),
        r"rank = 12 is not among ranks = \[1, 2, 4, 8, 16, 32, 64\]; add it to ranks",
    ),
    Case(
        "run: config file missing",
        RUN,
        "bad TOML",
        lambda env: [env.tmp / "absent.toml"],
        r"absent\.toml:1: cannot read the config \(No such file or directory\); pass the path",
    ),
    # ---- NaN embeddings (and NaN images, the study's way to NaN embeddings)
    Case(
        "lid: NaN in the embedding",
        "lid X.npy",
        "NaN embeddings",
        lambda env: [env.points("nan.npy", nan=True)],
        r"nan\.npy contains NaN or infinite values in 1 of 60 rows; drop or impute those rows",
    ),
    Case(
        "align: NaN in the second embedding",
        "align X.npz Y.npz",
        "NaN embeddings",
        lambda env: [env.points("x.npz"), env.points("nan.npz", nan=True)],
        r"nan\.npz\['X'\] contains NaN or infinite values in 1 of 60 rows; drop or impute",
    ),
    Case(
        "brain-align: NaN in the embedding",
        BRAIN_ALIGN,
        "NaN embeddings",
        lambda env: [env.points("nan.npz", n=300, nan=True), "--nsd", env.nsd],
        r"nan\.npz\['X'\] contains NaN or infinite values in 1 of 300 rows; drop or impute",
    ),
    Case(
        "brain-lid: NaN in the embedding",
        "brain-lid --nsd ROOT --embedding EMB.npz",
        "NaN embeddings",
        lambda env: ["--nsd", env.nsd, "--embedding", env.points("nan.npz", n=300, nan=True)],
        r"nan\.npz\['X'\] contains NaN or infinite values in 1 of 300 rows; drop or impute",
    ),
    Case(
        "run: NaN in the stimulus images",
        RUN,
        "NaN embeddings",
        lambda env: [env.source(env.nan_images())],
        r"images\.npy has \d+ float values outside \[0, 1\] or NaN; scale floats to \[0, 1\]",
    ),
    Case(
        "extract: NaN in the stimulus images",
        "extract SPEC --stimuli IMAGES.npy",
        "NaN embeddings",
        lambda env: [MEMBER, "--stimuli", env.nan_images()],
        r"images\.npy has \d+ float values outside \[0, 1\] or NaN; scale floats to \[0, 1\]",
    ),
    # ---- K too large
    Case(
        "lid: K = number of points",
        "lid X.npy --k 5,60",
        "K too large",
        lambda env: [env.points(), "--k", "5,60"],
        r"k=60 must be < the number of distinct points n_distinct=60; pass k <= 59",
    ),
    Case(
        "align: mutual-knn K = number of points",
        "align X Y --method mutual-knn --k 60",
        "K too large",
        lambda env: [env.points(), env.points(), "--method", "mutual-knn", "--k", "60"],
        r"k=60 must be < n_samples=60 \(self excluded\); pass k <= 59",
    ),
    Case(
        "brain-lid: K above the ROI's images",
        "brain-lid --nsd ROOT --k 5,500",
        "K too large",
        lambda env: ["--nsd", env.nsd, "--k", "5,500"],
        r"k=500 must be < the number of distinct points n_distinct=36; pass k <= 35",
    ),
    Case(
        "run: [dimension] k above the stimulus count",
        RUN,
        "K too large",
        _run(("k = [5, 10]", "k = [5, 10, 500]")),
        r"\[dimension\] k = \[5, 10, 500\] has K = 500, but the study has 40 stimuli and K must "
        r"be below n - 1 = 39; drop K >= 39 from \[dimension\] k or use more images",
    ),
    Case(
        "run: [dimension] k above the NSD images",
        RUN + " ([brain] nsd)",
        "K too large",
        _run_nsd(NSD_STIMULI, ("k = [5, 10]", "k = [5, 10, 35]")),
        r"\[dimension\] k = \[5, 10, 35\] has K = 35, but the study has 36 stimuli",
    ),
    # ---- empty stimulus set
    Case(
        "run: empty image folder",
        RUN,
        "empty stimulus set",
        lambda env: [env.source(env.folder())],
        r"no images found in .*images; add files with extensions \.bmp .*\.webp",
    ),
    Case(
        "run: folder without images",
        RUN,
        "empty stimulus set",
        lambda env: [env.source(env.folder("notes.txt"))],
        r"no images found in .*images; add files with extensions",
    ),
    Case(
        "run: n_images = 0",
        RUN,
        "empty stimulus set",
        _run(("n_images = 40", "n_images = 0")),
        _line(r"stimuli\.n_images = 0 must be > 0; change it to a value > 0"),
    ),
    Case(
        "run: stimulus folder missing",
        RUN,
        "empty stimulus set",
        lambda env: [env.source(env.tmp / "absent")],
        r"stimulus source .*absent does not exist; pass an image folder",
    ),
    Case(
        "extract: empty image folder",
        "extract SPEC --stimuli DIR",
        "empty stimulus set",
        lambda env: [MEMBER, "--stimuli", env.folder()],
        r"no images found in .*images; add files with extensions",
    ),
    Case(
        "extract: folder without images",
        "extract SPEC --stimuli DIR",
        "empty stimulus set",
        lambda env: [MEMBER, "--stimuli", env.folder("notes.txt")],
        r"no images found in .*images; add files with extensions",
    ),
    Case(
        "extract: no --nsd-ids",
        "extract SPEC --stimuli nsd_stimuli.hdf5 --nsd-ids ,",
        "empty stimulus set",
        lambda env: [
            MEMBER,
            "--stimuli",
            env.nsd / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5",
            "--nsd-ids",
            ",",
        ],
        r"--nsd-ids ',' is not a list of whole numbers; pass e\.g\. --nsd-ids 0,1,2",
    ),
    Case(
        "lid: empty array",
        "lid X.npy",
        "empty stimulus set",
        lambda env: [env.array("empty.npy", np.empty((0, 8)))],
        r"empty\.npy is empty \(shape \(0, 8\)\); pass at least 2 rows",
    ),
    # ---- unwritable output folder
    Case(
        "run: --output is a file",
        RUN + " --output FILE",
        "unwritable output",
        lambda env: [env.study(), "--output", env.file()],
        r"output folder \(\[study\] output or --output\) .*afile is a file; pass a folder",
    ),
    Case(
        "run: [study] output under a file",
        RUN,
        "unwritable output",
        _output_under_a_file,
        r"output folder .*afile/out cannot be created: .*afile is a file; pass a folder elsewhere",
    ),
    Case(
        "run: --output in /proc",
        RUN + " --output /proc/repscope-out",
        "unwritable output",
        lambda env: [env.study(), "--output", PROC / "repscope-out"],
        r"output folder .* /proc/repscope-out cannot be created in /proc \(.*\); pass a folder "
        r"you can write to",
        NEEDS_PROC,
    ),
    Case(
        "brain-align: --out is a file",
        BRAIN_ALIGN + " --out FILE",
        "unwritable output",
        _brain_align_out(lambda env: env.file()),
        r"--out .*afile is a file; pass a folder",
    ),
    Case(
        "brain-align: --out under a file",
        BRAIN_ALIGN + " --out FILE/out",
        "unwritable output",
        _brain_align_out(lambda env: env.file() / "out"),
        r"--out .*afile/out cannot be created: .*afile is a file; pass a folder elsewhere",
    ),
    Case(
        "brain-align: --out in /proc",
        BRAIN_ALIGN + " --out /proc/repscope-out",
        "unwritable output",
        _brain_align_out(lambda env: PROC / "repscope-out"),
        r"--out /proc/repscope-out cannot be created in /proc \(.*\); pass a folder you can",
        NEEDS_PROC,
    ),
    Case(
        "extract: --out under a file",
        "extract SPEC --stimuli builtin:digits --out FILE/e.npz",
        "unwritable output",
        lambda env: [MEMBER, *DIGITS, "--out", env.file() / "e.npz"],
        r"the folder of --out .*afile is a file; pass a folder",
    ),
    Case(
        "extract: --out in /proc",
        "extract SPEC --stimuli builtin:digits --out /proc/e.npz",
        "unwritable output",
        lambda env: [MEMBER, *DIGITS, "--out", PROC / "e.npz"],
        r"the folder of --out /proc is not writable \(.*\); pass a folder you can write to",
        NEEDS_PROC,
    ),
    Case(
        "extract: --out not .npz",
        "extract SPEC --stimuli builtin:digits --out e.csv",
        "unwritable output",
        lambda env: [MEMBER, *DIGITS, "--out", env.tmp / "e.csv"],
        r"--out '.*e\.csv' must end in \.npz \(it holds X and ids\); pass e\.g\. --out emb\.npz",
    ),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding and mini-zoo cache for the module (no row writes to it)."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(
    case: Case, tmp_path: Path, mini_nsd: Any, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPSCOPE_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = Env(tmp=tmp_path, nsd=mini_nsd.root)
    command = case.command.split()[0]
    args = case.setup(env)
    args += ["--no-progress"] * (command in QUIET) + ["--cache-dir", cache] * (command in CACHED)
    before = set(tmp_path.rglob("*"))
    result = invoke(command, *args)
    assert_one_line_error(result, case.match(env) if callable(case.match) else case.match)
    assert "; " in result.stderr, "the line names no fix after the problem"
    written = set(tmp_path.rglob("*")) - before
    assert not written, sorted(str(p.relative_to(tmp_path)) for p in written)


def test_the_table_covers_every_error_path_of_the_issue() -> None:
    problems = {c.problem for c in CASES}
    assert problems == {
        "unknown model",
        "missing NSD files",
        "mismatched ids",
        "bad TOML",
        "NaN embeddings",
        "K too large",
        "empty stimulus set",
        "unwritable output",
        "duplicates",
    }
    for problem in problems:  # the study command, and a direct one where the path applies
        commands = {c.command.split()[0] for c in CASES if c.problem == problem}
        assert "run" in commands and (len(commands) > 1 or problem == "bad TOML"), problem
    assert len({c.id for c in CASES}) == len(CASES)
    assert all(re.fullmatch(r"[a-z-]+: .+", c.id) for c in CASES)


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    """The rows' base config plans a study (so each row fails for its own change only)."""
    result = invoke("run", Env(tmp_path, tmp_path).study(), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    stages = [s["stage"] for s in json.loads(result.stdout)["stages"]]
    assert stages.count("extract") == len(MEMBERS)
    assert not (tmp_path / "out").exists()
