"""The paper's zoo table: structure, sourced top-1, parameter counts, user extensions, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from repscope._validation import InputError
from repscope.zoo import REQUIRED_COLUMNS, count_parameters, load_zoo_table
from repscope.zoo.cli import zoo_app

CONVNEXT_SIZES = {
    "atto",
    "femto",
    "pico",
    "nano",
    "tiny",
    "small",
    "base",
    "large",
    "xlarge",
    "xxlarge",
}
REFERENCE = "timm:convnext_large_mlp.clip_laion2b_soup_ft_in12k_in1k_384"
runner = CliRunner()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_zoo_table()


def test_required_columns_and_unique_specs(table: pd.DataFrame) -> None:
    assert set(REQUIRED_COLUMNS) <= set(table.columns)
    assert table["spec"].is_unique
    assert table["spec"].str.startswith("timm:").all()
    assert (table["architecture"] == table["spec"].str[5:].str.split(".").str[0]).all()


def test_convnext_zoo_spans_sizes_and_training_data(table: pd.DataFrame) -> None:
    convnext = table[table["family"] == "convnext"]
    assert len(convnext) >= 20
    assert set(convnext["size"]) == CONVNEXT_SIZES
    assert {"ImageNet-1K", "ImageNet-22K", "ImageNet-12K", "LAION-2B"} <= set(
        convnext["pretrain_data"]
    )
    assert (convnext["supervision"] == "clip").sum() >= 5


def test_cross_check_families_present(table: pd.DataFrame) -> None:
    counts = table["family"].value_counts()
    assert set(counts.index) == {"convnext", "resnet", "resmlp", "vit"}
    assert counts["resnet"] >= 20 and counts["resmlp"] >= 8 and counts["vit"] == 3
    vit = table[table["family"] == "vit"]
    assert vit["spec"].str.endswith(".mae").all()
    assert vit["imagenet_top1"].isna().all()  # MAE encoders have no classifier, so no top-1


def test_reference_model_row(table: pd.DataFrame) -> None:
    row = table.set_index("spec").loc[REFERENCE]
    assert row["imagenet_top1"] == pytest.approx(88.306)
    assert row["resolution"] == 384 and row["params_m"] == pytest.approx(200.13)
    assert "results-imagenet.csv" in row["top1_source"]


def test_top1_is_sourced_or_marked(table: pd.DataFrame) -> None:
    has_top1 = table["imagenet_top1"].notna()
    assert table.loc[has_top1, "imagenet_top1"].between(50, 100).all()
    sources = table.loc[has_top1, "top1_source"]
    assert sources.str.contains("huggingface/pytorch-image-models@").all()
    assert (table.loc[has_top1, "top1_resolution"] >= 160).all()
    missing = table.loc[~has_top1, "top1_source"]
    assert missing.str.match(r"^(unsourced|none: )").all()
    assert table.loc[~has_top1, "top1_resolution"].isna().all()
    # a row with an ImageNet-1K classifier of its own always has a published number here
    assert table.loc[table["spec"].str.contains("in1k"), "imagenet_top1"].notna().all()


def test_data_columns_are_consistent(table: pd.DataFrame) -> None:
    assert (table["pretrain_images"] >= 1_281_167).all()
    assert table["pretrain_images_approx"].dtype == bool
    in1k_only = table["pretrain_data"] == "ImageNet-1K"
    assert (table.loc[in1k_only, "pretrain_images"] == 1_281_167).all()
    assert not table.loc[in1k_only, "pretrain_images_approx"].any()
    finetuned = table["spec"].str.contains("_ft_")
    assert (table.loc[finetuned, "finetune_data"].str.endswith("ImageNet-1K")).all()
    assert (table.loc[~finetuned, "finetune_data"] == "").all()
    assert table["resolution"].isin([160, 224, 256, 288, 320, 384]).all()


def test_tags_exist_in_timm(table: pd.DataFrame) -> None:
    import timm

    known = set(timm.list_pretrained())
    assert set(table["spec"].str[5:]) <= known


def test_count_parameters_matches_table(table: pd.DataFrame) -> None:
    """Every row, on the meta device: about 2 s for all of them (shared shapes are built once)."""
    counted = [count_parameters(spec) / 1e6 for spec in table["spec"]]
    assert [round(c, 2) for c in counted] == table["params_m"].tolist()


def test_count_parameters_keeps_the_tags_classifier() -> None:
    in1k = count_parameters("timm:convnext_tiny.fb_in1k")
    in22k = count_parameters("timm:convnext_tiny.fb_in22k")
    assert in22k - in1k == 768 * (21841 - 1000) + (21841 - 1000)
    assert count_parameters("timm:convnext_tiny") == in1k  # default tag


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("convnext_tiny", "no source prefix"),
        ("hf:convnext_tiny", "source 'hf'"),
        ("timm:convnxt_tiny", r"did you mean .*convnext_tiny\b"),
        ("timm:convnext_tiny.fb_in1kk", r"did you mean .*convnext_tiny\.fb_in1k\b"),
        ("minizoo:cnn-w16-d2-n400", "did you mean .*cnn-w16-d2-n4000"),
    ],
)
def test_count_parameters_errors(spec: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        count_parameters(spec)


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_extra_csv_overrides_in_place_and_extends(table: pd.DataFrame, tmp_path: Path) -> None:
    override = table[table["spec"] == "timm:resnet50.tv_in1k"][list(REQUIRED_COLUMNS)].copy()
    override["imagenet_top1"] = 76.5
    override["top1_source"] = "my re-evaluation"
    new = override.copy()
    new["spec"] = "timm:resnet50.tv2_in1k"
    new["imagenet_top1"] = float("nan")
    new["top1_source"] = "unsourced"
    extra = pd.concat([override, new]).assign(lab="ours")
    merged = load_zoo_table(_write(tmp_path / "extra.csv", extra))
    assert len(merged) == len(table) + 1
    position = table.index[table["spec"] == "timm:resnet50.tv_in1k"][0]
    assert merged.loc[position, "imagenet_top1"] == 76.5
    assert merged.loc[position, "top1_source"] == "my re-evaluation"
    assert merged.iloc[-1]["spec"] == "timm:resnet50.tv2_in1k"
    assert merged.iloc[-1]["lab"] == "ours" and merged.iloc[0]["lab"] == ""
    pd.testing.assert_frame_equal(load_zoo_table(extra), merged)  # DataFrame input agrees


def test_user_top1_without_source_is_attributed(table: pd.DataFrame, tmp_path: Path) -> None:
    extra = table.iloc[[0]][list(REQUIRED_COLUMNS)].assign(top1_source="")
    path = _write(tmp_path / "mine.csv", extra)
    merged = load_zoo_table(path)
    assert merged.loc[0, "top1_source"] == f"user table {path}"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda f: f.drop(columns=["imagenet_top1", "family"]),
            r"lacks columns family, imagenet_top1; add them",
        ),
        (lambda f: f.assign(params_m="big"), r"params_m='big' for timm:\S+ is not a number"),
        (lambda f: pd.concat([f, f]), r"lists spec timm:\S+ twice"),
        (lambda f: f.assign(spec=""), r"empty spec in row 1"),
    ],
)
def test_extra_table_errors_name_file_and_problem(table, tmp_path, edit, match) -> None:
    path = _write(tmp_path / "bad.csv", edit(table.iloc[[0]].copy()))
    with pytest.raises(InputError, match=rf"zoo table {re.escape(str(path))}:? .*{match}"):
        load_zoo_table(path)


def test_missing_extra_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.csv does not exist; pass the path of a CSV"):
        load_zoo_table(tmp_path / "nope.csv")


def test_cli_list_json_and_table(table: pd.DataFrame) -> None:
    result = runner.invoke(zoo_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["models"]
    assert [m["spec"] for m in models] == table["spec"].tolist()
    mae = next(m for m in models if m["spec"].endswith("vit_base_patch16_224.mae"))
    assert mae["imagenet_top1"] is None
    result = runner.invoke(zoo_app, ["list"])
    assert result.exit_code == 0 and f"paper zoo ({len(table)} models" in result.stdout


def test_cli_list_bad_extra(tmp_path: Path) -> None:
    result = runner.invoke(zoo_app, ["list", "--extra", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2 and result.stdout == ""
    assert re.fullmatch(r"error: zoo table .*missing.csv does not exist; .*\n", result.stderr)
