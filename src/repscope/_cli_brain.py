"""``repscope brain-align``, ``brain-lid`` and ``simulate-fmri``: fMRI data on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from repscope._cli_common import (
    DeviceOpt,
    JsonOpt,
    _fmt,
    _parse_choice,
    _parse_k,
    _parse_pca,
    _print_json,
    _user_errors,
)
from repscope._validation import InputError, check_writable_folder

NsdOpt = Annotated[
    Path | None,
    typer.Option(
        "--nsd",
        help="NSD root (holding nsddata/, nsddata_betas/), e.g. one written by simulate-fmri.",
    ),
]
AlgonautsOpt = Annotated[
    Path | None,
    typer.Option("--algonauts", help="Algonauts 2023 root (holding subjAA/) instead of --nsd."),
]
SubjectOpt = Annotated[
    list[int], typer.Option("--subject", help="Subject number (1-8); repeat for several.")
]
RoiOpt = Annotated[
    list[str],
    typer.Option(
        "--roi",
        help="ROI label name (EBA, V1v, hV4, FFA-1…), a union alias (V1 = V1v+V1d), a family "
        "(floc-bodies) or family:name; repeat for several. Default: nsdgeneral with --nsd, "
        "every challenge vertex with --algonauts (which has no nsdgeneral labels).",
    ),
]
BetasOpt = Annotated[str, typer.Option(help="NSD betas version (folder name under func1pt8mm).")]
RidgeDeviceOpt = Annotated[
    str, typer.Option("--device", help="Where the ridge products run: auto, cpu or cuda.")
]
ProgressOpt = Annotated[bool, typer.Option(help="Show progress bars on stderr.")]


def _load_subjects(
    nsd: Path | None,
    algonauts: Path | None,
    subjects: list[int],
    rois: list[str],
    betas: str,
    progress: bool,
) -> list[Any]:
    """One BrainResponses per subject, from whichever dataset root was given."""
    if (nsd is None) == (algonauts is None):
        raise InputError("pass exactly one of --nsd ROOT or --algonauts ROOT.")
    if not subjects:
        raise InputError("pass at least one --subject, e.g. --subject 1.")
    if nsd is not None:
        from repscope.io.nsd import load_nsd

        rois = rois or ["nsdgeneral"]
        return [load_nsd(nsd, s, rois, betas=betas, progress=progress) for s in subjects]
    from repscope.io.algonauts import load_algonauts

    return [load_algonauts(algonauts, s, rois or None) for s in subjects]


def brain_align(
    embedding: Annotated[
        Path, typer.Argument(help="Embedding with stimulus ids (.npz with X and ids).")
    ],
    nsd: NsdOpt = None,
    algonauts: AlgonautsOpt = None,
    subject: SubjectOpt = [1],  # noqa: B006 - typer reads the default, never mutates it
    roi: RoiOpt = [],  # noqa: B006
    betas: BetasOpt = "betas_fithrf_GLMdenoise_RR",
    test: Annotated[
        str, typer.Option(help="Test images: random (seeded share) or shared (NSD's shared 1000).")
    ] = "random",
    test_size: Annotated[float, typer.Option(help="Held-out share when --test random.")] = 0.2,
    pca: Annotated[
        str, typer.Option(help="Principal components fit on the train split, or none.")
    ] = "300",
    seed: Annotated[int, typer.Option(help="Seed of the split and the CV folds.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the score table and voxelwise maps (for plotting)."),
    ] = None,
    device: RidgeDeviceOpt = "auto",
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Model–brain alignment: ridge from an embedding to each ROI's voxels, held-out R²."""
    from repscope.alignment.brain import brain_alignment
    from repscope.io.arrays import load_embedding

    with _user_errors():
        if out is not None:  # brain_alignment.csv and voxel_maps.npz go there
            check_writable_folder(out, "--out")
        test = _parse_choice("--test", test, ("random", "shared"))
        n_pca = _parse_pca(pca)
        X, ids = load_embedding(embedding)
        if ids is None:
            raise InputError(
                f"{embedding} has no stimulus ids; brain alignment matches rows by id, so pass "
                "an .npz with X and ids (repscope extract --out FILE.npz writes one)."
            )
        brains = _load_subjects(nsd, algonauts, subject, roi, betas, progress and not json_out)
        result = brain_alignment(
            X,
            ids,
            brains,
            pca=n_pca,
            test=test,
            test_size=test_size,
            random_state=seed,
            device=device,
            progress=progress and not json_out,
        )
        if out is not None:
            result.save(out)
    if json_out:
        _print_json(result.to_dict())
        return
    _print_scores(result.table, title=f"brain alignment of {embedding.name}")
    if out is not None:
        typer.echo(f"scores and voxelwise maps written to {out}", err=True)


def _print_scores(table: Any, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    columns = ("subject", "roi", "n_voxels", "r2", "pearson_r", "noise_ceiling", "r2_normalized")
    for name in columns:
        view.add_column(name, justify="left" if name in ("subject", "roi") else "right")
    for row in table.to_dict("records"):
        view.add_row(
            str(row["subject"]),
            str(row["roi"]),
            str(row["n_voxels"]),
            *(_fmt(row[c], 3) for c in columns[3:]),
        )
    Console().print(view)
    Console(stderr=True).print(
        "r2: mean held-out R² over the ROI's voxels; noise_ceiling: mean NSD noise ceiling of "
        "the test images (fraction); r2_normalized: r2 / noise_ceiling. Subject 'all': mean over "
        "subjects.",
        highlight=False,
    )


def brain_lid(
    nsd: NsdOpt = None,
    algonauts: AlgonautsOpt = None,
    subject: SubjectOpt = [1],  # noqa: B006
    roi: RoiOpt = [],  # noqa: B006
    betas: BetasOpt = "betas_fithrf_GLMdenoise_RR",
    k: Annotated[
        str | None, typer.Option("--k", help="Comma-separated K list (default 5…1000, capped).")
    ] = None,
    estimator: Annotated[str, typer.Option(help="Pointwise estimator, e.g. mle.")] = "mle",
    pca: Annotated[str, typer.Option(help="Principal components, or none.")] = "300",
    embedding: Annotated[
        Path | None,
        typer.Option(help="A model embedding (.npz with X and ids) whose profile to compare."),
    ] = None,
    device: DeviceOpt = "auto",
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """LID profile of each ROI's response patterns, and its distance to a model's profile."""
    from repscope.dimension.brain import profile_distances, roi_dimension_profiles

    with _user_errors():
        ks = _parse_k(k)
        n_pca = _parse_pca(pca)
        brains = _load_subjects(nsd, algonauts, subject, roi, betas, progress and not json_out)
        profiles = roi_dimension_profiles(
            brains, roi or None, k=ks, estimator=estimator, pca=n_pca, device=device
        )
        distances = None
        if embedding is not None:
            distances = profile_distances(
                _model_profile(embedding, brains, profiles, estimator, n_pca, device), profiles
            )
    if json_out:
        out = {"profiles": profiles.to_dict("records")}
        if distances is not None:
            out["distances"] = distances.to_dict("records")
        _print_json(out)
        return
    _print_profiles(profiles, distances)


def _model_profile(
    embedding: Path, brains: list[Any], profiles: Any, estimator: str, pca: int | None, device: str
) -> Any:
    """The model's LID profile on the images the brain data holds, at the profiles' K."""
    import numpy as np

    from repscope.dimension.estimate import local_dimension
    from repscope.io.arrays import load_embedding

    X, ids = load_embedding(embedding)
    if ids is not None:
        keep = np.isin(ids, np.concatenate([b.stimulus_ids for b in brains]))
        if not keep.any():
            raise InputError(
                f"{embedding} shares no stimulus ids with the brain data (e.g. {ids[0].item()!r} "
                f"vs {brains[0].stimulus_ids[0].item()!r}); embed the same NSD images."
            )
        X = X[keep]
    ks = sorted(k for k in set(profiles["k"]) if k < len(X))
    return local_dimension(X, k=ks, estimator=estimator, pca=pca, device=device)


def _print_profiles(profiles: Any, distances: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    ks = sorted(set(profiles["k"]))
    view = Table(title="ROI local intrinsic dimension (mean pointwise estimate per K)")
    view.add_column("subject")
    view.add_column("roi")
    for kk in ks:
        view.add_column(f"K={kk}", justify="right")
    view.add_column("slope / ln K", justify="right")
    for (subj, name), rows in profiles.groupby(["subject", "roi"], sort=False):
        by_k = dict(zip(rows["k"], rows["lid"], strict=True))
        view.add_row(
            str(subj),
            str(name),
            *(_fmt(by_k.get(kk)) for kk in ks),
            _fmt(float(rows["slope"].iloc[0]), 3),
        )
    console = Console()
    console.print(view)
    if distances is not None:
        dist = Table("subject", "roi", "common K", "distance", title="model vs ROI profile")
        for row in distances.to_dict("records"):
            dist.add_row(
                str(row["subject"]),
                str(row["roi"]),
                str(row["n_common_k"]),
                _fmt(row["distance"], 3),
            )
        console.print(dist)


def simulate_fmri(
    out: Annotated[Path, typer.Argument(help="New folder for the simulated NSD root.")],
    stimuli: Annotated[
        str,
        typer.Option(help="Real images: builtin:NAME (digits, photos, mnist…) or a folder."),
    ] = "builtin:digits",
    subjects: Annotated[int, typer.Option(help="Subjects (1-8).")] = 2,
    images: Annotated[
        int | None, typer.Option(help="Use the first N stimuli (default all).")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="Model spec driving the higher ROI (EBA), or a .npy of precomputed features "
            "(one row per image)."
        ),
    ] = "torchvision:mobilenet_v2.IMAGENET1K_V1",
    repeats: Annotated[int, typer.Option(help="Trials per image (NSD: 3).")] = 3,
    trials_per_session: Annotated[int, typer.Option(help="Trials per session file.")] = 750,
    image_size: Annotated[int, typer.Option(help="Side of the stored square images.")] = 128,
    betas_format: Annotated[str, typer.Option("--format", help="nii.gz or hdf5.")] = "nii.gz",
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an earlier simulation in the same folder.")
    ] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache root.")] = None,
    progress: ProgressOpt = True,
    json_out: JsonOpt = False,
) -> None:
    """Write a simulated fMRI dataset in NSD's own layout, with a known ground truth."""
    from repscope.io.simulate import simulate_nsd

    with _user_errors():
        betas_format = _parse_choice("--format", betas_format, ("nii.gz", "hdf5"))
        result = simulate_nsd(
            out,
            stimuli,
            n_subjects=subjects,
            model=_features_or_spec(model),
            n_images=images,
            repeats=repeats,
            trials_per_session=trials_per_session,
            image_size=image_size,
            betas_format=betas_format,
            seed=seed,
            overwrite=overwrite,
            progress=progress and not json_out,
            cache_dir=cache_dir,
        )
    if json_out:
        _print_json({"root": str(result.root), **result.summary})
        return
    typer.echo(
        f"simulated NSD written to {result.root} "
        f"(subjects {', '.join(map(str, result.subjects))}); "
        f"ground truth in {result.record.name}. Try: repscope brain-align EMB.npz --nsd "
        f"{result.root} --roi EBA --roi V1"
    )


def _features_or_spec(model: str) -> Any:
    """A ``.npy`` path becomes its array (precomputed features); anything else is a spec."""
    if not model.endswith(".npy"):
        return model
    from repscope.io.arrays import load_embedding

    path = Path(model)
    if not path.is_file():
        raise InputError(
            f"--model {model}: no such .npy file; pass a features file or a model spec."
        )
    return load_embedding(path)[0]  # one-line errors for text, pickles, NaN, wrong shape
