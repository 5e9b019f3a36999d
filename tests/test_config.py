"""Study config: the shipped configs load, defaults fill, paths resolve, digests are stable,
and every kind of mistake is one line naming its file and line."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from repscope._validation import InputError
from repscope.experiment._toml_lines import key_lines
from repscope.experiment.config import ConfigError, StudyConfig, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PAPER_REFERENCE = "timm:convnext_large_mlp.clip_laion2b_soup_ft_in12k_in1k_384"
MINI = '["minizoo:cnn-w8-d1-n500", "minizoo:cnn-w8-d2-n1000", "minizoo:mlp-w64-d1-n500"]'
SECTIONS = {
    "study": '[study]\nname = "t"\nquestion = "Does it?"\noutput = "out"\n',
    "models": f"[models]\nspecs = {MINI}\n",
    "stimuli": '[stimuli]\nsource = "builtin:digits"\n',
}
SIMULATED = '[brain]\nsimulated = {stimuli = "builtin:digits", n_images = 100}\nk = 50\n'


def study(**sections: str) -> str:
    """A valid minimal study, with sections replaced or added (an empty string drops one)."""
    return "\n".join(text for text in {**SECTIONS, **sections}.values() if text)


def error_of(tmp_path: Path, text: str) -> str:
    """The ConfigError message of loading ``text`` from a file; checked to be one line."""
    path = tmp_path / "study.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:")
    return message


def line_of(text: str, marker: str) -> int:
    """1-based line of the first occurrence of ``marker`` in ``text``."""
    return text[: text.index(marker)].count("\n") + 1


# ---- the shipped configs -----------------------------------------------------------------


def test_paper_config_is_the_papers_study():
    config = load_config(EXAMPLES / "paper_nsd.toml")
    assert len(config.model_specs) >= 20
    assert all(spec.startswith("timm:convnext") for spec in config.model_specs)
    assert config.alignment.reference == PAPER_REFERENCE
    assert PAPER_REFERENCE in config.model_specs
    assert config.dimension.k == (5, 10, 20, 50, 100, 200, 500, 1000)
    assert (config.alignment.k, config.brain.k, config.preprocessing.pca) == (50, 1000, 300)
    assert config.brain.subjects == tuple(range(1, 9))
    assert config.brain.rois == ("EBA", "V1", "V2", "V3", "hV4")
    assert (config.stimuli.source, config.brain.test) == ("nsd", "shared")
    # the NSD root is a placeholder: the run checks it, not the config
    assert config.brain.nsd.is_absolute()


def test_demo_config_ships_with_the_package():
    with resources.as_file(resources.files("repscope.experiment") / "demo.toml") as path:
        config = load_config(path)
    assert len(config.model_specs) == 14
    assert "efficientnet_lite:efficientnet-lite0" in config.model_specs
    assert config.brain.simulated.subjects == 2
    assert config.brain.subjects == (1, 2)
    assert config.brain.k in config.dimension.k


# ---- defaults, paths, dict and digest -------------------------------------------------


def test_defaults_are_filled(tmp_path):
    config = parse_config(study(), base_dir=tmp_path)
    assert (config.study.seed, config.study.device) == (0, "auto")
    assert config.models.pretrained and not config.models.allow_few
    assert config.embedding.layers == ("penultimate",)
    assert (config.embedding.pooling, config.embedding.batch_size) == ("mean", "auto")
    assert config.preprocessing.pca == 300
    assert config.dimension.estimators == ("mle",)
    assert config.dimension.k == (5, 10, 20, 50, 100, 200, 500, 1000)
    assert config.dimension.global_measures and config.dimension.aggregate == "mean"
    assert config.alignment.methods == ("ridge",)
    assert (config.alignment.reference, config.alignment.k) == ("best", 50)
    assert config.alignment.both_directions
    assert config.brain is None
    assert config.statistics.covariates == ("family", "log_params")
    assert (config.statistics.bootstrap, config.statistics.permutations) == (10000, 10000)
    assert config.statistics.confidence == 0.95


def test_brain_defaults(tmp_path):
    nsd = parse_config(study(brain='[brain]\nnsd = "nsd"\n'), base_dir=tmp_path).brain
    assert nsd.subjects == tuple(range(1, 9))
    assert nsd.rois == ("EBA", "V1", "V2", "V3", "hV4")
    assert (nsd.test, nsd.pca, nsd.k) == ("shared", 300, 1000)
    simulated = parse_config(study(brain=SIMULATED), base_dir=tmp_path).brain
    assert simulated.subjects == (1, 2)
    assert (simulated.simulated.subjects, simulated.simulated.seed) == (2, 0)


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    folder = tmp_path / "studies"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    text = study(
        study='[study]\nname = "t"\nquestion = "q"\noutput = "runs/a"\n',
        stimuli='[stimuli]\nsource = "images"\n',
        brain='[brain]\nnsd = "../nsd"\n',
    )
    (folder / "s.toml").write_text(text)
    config = load_config(Path("studies/s.toml"))
    assert config.study.output == folder / "runs" / "a"
    assert config.stimuli.source == str(folder / "images")
    assert config.brain.nsd == tmp_path / "nsd"


def test_metadata_path_resolves_and_extends_the_zoo(tmp_path):
    import pandas as pd

    from repscope.zoo.metadata import load_zoo_table

    row = load_zoo_table().iloc[[0]].assign(spec="timm:convnext_atto.mine", family="mine")
    (tmp_path / "extra.csv").write_text(row.to_csv(index=False))
    text = study(
        models='[models]\nzoo = "paper"\nfamily = ["mine"]\nmetadata = "extra.csv"\n'
        "allow_few = true\n"
    )
    config = parse_config(text, base_dir=tmp_path)
    assert config.models.metadata == tmp_path / "extra.csv"
    assert config.model_specs == ("timm:convnext_atto.mine",)
    assert isinstance(config.models.zoo_table(), pd.DataFrame)


def test_zoo_filters(tmp_path):
    text = study(models='[models]\nzoo = "paper"\nfamily = ["convnext"]\nmax_params = 30e6\n')
    specs = parse_config(text, base_dir=tmp_path).model_specs
    assert "timm:convnext_atto.d2_in1k" in specs and "timm:convnext_tiny.fb_in1k" in specs
    assert not any("small" in s or "resnet" in s for s in specs)


def test_to_dict_is_json_and_lists_the_models(tmp_path):
    config = parse_config(study(brain=SIMULATED), base_dir=tmp_path)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["models"]["model_specs"] == list(config.model_specs)
    assert data["study"]["output"] == str(tmp_path / "out")
    assert data["dimension"]["k"] == [5, 10, 20, 50, 100, 200, 500, 1000]
    assert data["brain"]["simulated"]["n_images"] == 100


def test_digest_ignores_order_and_layout_but_not_values(tmp_path):
    text = study(dimension="[dimension]\nk = [10, 5, 50]\naggregate = 'median'\n")
    reordered = (
        "# the same study, keys and sections in another order\n"
        '[dimension]\naggregate = "median"\nk = [5, 50, 10]\n\n'
        '[stimuli]\nsource = "builtin:digits"\n'
        f"[models]\nspecs = {MINI}\n"
        '[study]\noutput = "out"\nquestion = "Does it?"\nname = "t"\n'
    )
    digest = parse_config(text, base_dir=tmp_path).config_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert parse_config(reordered, base_dir=tmp_path).config_digest() == digest
    renamed = text.replace('name = "t"', 'name = "another name"')
    assert parse_config(renamed, base_dir=tmp_path).config_digest() == digest
    reseeded = text.replace('output = "out"', 'output = "out"\nseed = 1')
    assert parse_config(reseeded, base_dir=tmp_path).config_digest() != digest
    other_k = text.replace("k = [10, 5, 50]", "k = [10, 5, 20, 50]")
    assert parse_config(other_k, base_dir=tmp_path).config_digest() != digest


def test_config_is_frozen(tmp_path):
    config = parse_config(study(), base_dir=tmp_path)
    with pytest.raises(ValueError, match="frozen"):
        config.study.seed = 3
    assert isinstance(config, StudyConfig)


# ---- errors: one line, with the file and line of the mistake ----------------------------


def test_error_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        parse_config("[study]\n", base_dir=tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml:1: cannot read the config .*; pass"):
        load_config(tmp_path / "nope.toml")


def test_toml_syntax_error_keeps_tomls_line_and_column(tmp_path):
    text = study(stimuli="[stimuli]\nsource = builtin:digits\n")
    message = error_of(tmp_path, text)
    line = line_of(text, "source = builtin")
    assert re.search(rf":{line}: TOML syntax error at column \d+: Invalid value; fix", message)


ERRORS = [
    # (sections replaced, marker on the reported line or None for line 1, message pattern)
    (
        {"alignment": '[alignment]\nmethods = ["ridge"]\nreferenc = "best"\n'},
        "referenc =",
        r"unknown key 'referenc' in \[alignment\]; did you mean 'reference'\?",
    ),
    (
        {"stdy": '[stdy]\nname = "x"\n'},
        "[stdy]",
        r"unknown section \[stdy\]; did you mean \[study\]\?",
    ),
    (
        {"embedding": "[embedding]\nzzz = 1\n"},
        "zzz",
        r"unknown key 'zzz' in \[embedding\]; valid keys: layers, pooling, batch_size\.",
    ),
    (
        {"brain": '[brain]\nsimulated = {stimuli = "builtin:digits", subjcts = 2}\nk = 50\n'},
        "simulated =",
        r"unknown key 'subjcts' in \[brain\.simulated\]; did you mean 'subjects'\?",
    ),
    (
        {"study": '[study]\nname = "t"\nquestion = "q"\noutput = "o"\nseed = "zero"\n'},
        "seed",
        r"study\.seed is a string \(\"zero\"\), expected an integer; write an integer instead, "
        r"e\.g\. seed = 0\.",
    ),
    (
        {"dimension": '[dimension]\nk = [\n  5,\n  "ten",\n]\n'},
        '"ten"',
        r"dimension\.k\[1\] is a string \(\"ten\"\), expected an integer",
    ),
    (
        {"brain": "[brain]\nsimulated = true\n"},
        "simulated",
        r"brain\.simulated is a boolean \(true\), expected a table",
    ),
    (
        {"brain": '[brain]\nnsd = "n"\nrois = ["EBA", 3]\n'},
        "rois",
        r"brain\.rois\[1\] is an integer \(3\), expected a string",
    ),
    (
        {"embedding": '[embedding]\nlayers = "penultimate"\n'},
        "layers",
        r"embedding\.layers is a string .*expected an array; write an array instead, "
        r'e\.g\. layers = \["penultimate"\]\.',
    ),
    (
        {"preprocessing": "[preprocessing]\npca = true\n"},
        "pca",
        r"preprocessing\.pca is a boolean \(true\), expected a positive integer or false",
    ),
    (
        {"embedding": "[embedding]\nbatch_size = 0\n"},
        "batch_size",
        r'expected a positive integer or "auto"',
    ),
    (
        {"study": '[study]\nname = "t"\noutput = "o"\n'},
        "[study]",
        r"\[study\] lacks the required key 'question'; add question = \.\.\. under \[study\]\.",
    ),
    (
        {"stimuli": ""},
        None,
        r"the section \[stimuli\] is missing; add \[stimuli\] with source\.",
    ),
    (
        {"models": '[models]\nspecs = [\n  "minizoo:a",\n  "timmm:convnext_tiny",\n  "x:y"]\n'},
        "timmm",
        r"models\.specs\[1\]: unknown model source 'timmm' .*did you mean 'timm'",
    ),
    (
        {"models": '[models]\nspecs = ["minizoo:a", "minizoo:b", "minizoo:a"]\n'},
        "specs",
        r"models\.specs\[2\]: 'minizoo:a' is listed twice; keep it once\.",
    ),
    (
        {"dimension": "[dimension]\nk = [0, 5, 50]\n"},
        "k =",
        r"dimension\.k\[0\] = 0 must be >= 2; change it to a value >= 2\.",
    ),
    (
        {"dimension": "[dimension]\nk = [5, 50, 5]\n"},
        "k =",
        r"dimension\.k\[2\]: 5 is listed twice",
    ),
    (
        {"dimension": "[dimension]\nestimators = ['mle2']\n"},
        "estimators",
        r"'mle2' is not a known estimator \(did you mean 'mle'.*\); write one of 'mle'",
    ),
    (
        {"alignment": '[alignment]\nreference = "timm:convnext_tiny.fb_in1k"\n'},
        "reference",
        r"alignment\.reference: reference 'timm:convnext_tiny\.fb_in1k' is not one of the "
        r'study\'s 3 models; write one of their specs, "best" or "all-pairs"\.',
    ),
    (
        {"alignment": "[alignment]\nk = 30\n"},
        "k = 30",
        r"alignment\.k: alignment\.k = 30 is not among \[dimension\] k = \[5, .*\]; add 30 to",
    ),
    (
        {"dimension": "[dimension]\nk = [5, 10]\n"},
        "k = [5",
        r"dimension\.k: alignment\.k = 50 is not among \[dimension\] k = \[5, 10\]",
    ),
    (
        {"brain": '[brain]\nnsd = "a"\nsimulated = {stimuli = "builtin:digits"}\nk = 50\n'},
        "nsd =",
        r"give exactly one of nsd = .* and simulated = .*; remove one\.",
    ),
    (
        {"brain": "[brain]\nk = 50\n"},
        "[brain]",
        r"brain\.nsd: give exactly one of nsd .*; add one\.",
    ),
    (
        {"brain": SIMULATED + "subjects = [1, 3]\n"},
        "subjects",
        r"brain\.subjects\[1\]: subject 3 is not simulated \(simulated\.subjects = 2\)",
    ),
    (
        {"brain": '[brain]\nnsd = "a"\nsubjects = [0]\n'},
        "subjects",
        r"brain\.subjects\[0\] = 0 must be >= 1",
    ),
    (
        {"brain": '[brain]\nnsd = "a"\ntest = "all"\n'},
        "test",
        r"brain\.test = \"all\" is not one of 'shared' or 'random'; write one of them, "
        r'e\.g\. test = "shared"\.',
    ),
    (
        {"models": '[models]\nspecs = ["minizoo:a", "minizoo:b"]\n'},
        "specs",
        r"2 models selected, but correlations across models need at least 3; .*allow_few",
    ),
    (
        {"models": "[models]\nspecs = []\n"},
        "specs",
        r"models\.specs is empty; give it a value\.",
    ),
    (
        {"models": f'[models]\nspecs = {MINI}\nzoo = "paper"\n'},
        "specs",
        r"give either specs = \[\.\.\.\] or zoo = \"paper\", not both",
    ),
    (
        {"models": "[models]\npretrained = false\n"},
        "[models]",
        r"models\.specs: no models are named; add specs = ",
    ),
    (
        {"models": '[models]\nzoo = "paper"\nfamily = ["resnet", "convnxt"]\n'},
        "family",
        r"models\.family\[1\]: no zoo model has family 'convnxt' \(did you mean 'convnext'\?\)",
    ),
    (
        {"models": '[models]\nzoo = "paper"\nmax_params = 1e3\n'},
        "zoo",
        r"the filters keep no model; loosen family or max_params\.",
    ),
    (
        {"models": f'[models]\nspecs = {MINI}\nfamily = ["cnn"]\n'},
        "family",
        r"family and max_params filter zoo = \"paper\"",
    ),
    (
        {"models": '[models]\nzoo = "paper"\nmetadata = "missing.csv"\n'},
        "metadata",
        r"models\.metadata: zoo table .*missing\.csv does not exist; pass the path of a CSV",
    ),
    (
        {"models": '[models]\nzoo = "papers"\n'},
        "zoo",
        r"models\.zoo = \"papers\" is not one of 'paper'",
    ),
    (
        {"stimuli": '[stimuli]\nsource = "nsd"\n'},
        "source",
        r"stimuli\.source: source = \"nsd\" means the \[brain\] dataset's nsd_stimuli\.hdf5",
    ),
    (
        {"stimuli": '[stimuli]\nsource = "builtin:digts"\n'},
        "source",
        r"'digts' is not a known built-in stimulus set \(did you mean 'digits'\?\)",
    ),
    (
        {"stimuli": '[stimuli]\nsource = "builtin:digits"\nn_images = -5\n'},
        "n_images",
        r"stimuli\.n_images = -5 must be > 0",
    ),
    (
        {"brain": '[brain]\nsimulated = {stimuli = "nsd"}\nk = 50\n'},
        "simulated",
        r'"nsd" cannot be the stimuli of a simulation',
    ),
    (
        {"study": '[study]\nname = "t"\nquestion = "q"\noutput = "o"\ndevice = "gpu"\n'},
        "device",
        r"study\.device: 'gpu' is not a device; write \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"\.",
    ),
    (
        {"study": '[study]\nname = ""\nquestion = "q"\noutput = "o"\n'},
        "name",
        r"study\.name is empty; give it a value\.",
    ),
    (
        {"study": '[study]\nname = "t"\nquestion = "q"\noutput = 3\n'},
        "output",
        r"study\.output is an integer \(3\), expected a path string",
    ),
    (
        {"statistics": "[statistics]\nconfidence = 1.5\ncovariates = ['size']\n"},
        "confidence",
        r"statistics\.confidence = 1\.5 must be < 1\.0; change it to a value < 1\.0, "
        r"e\.g\. confidence = 0\.95\.",
    ),
    (
        {"statistics": "[statistics]\ncovariates = ['family', 'sise']\n"},
        "covariates",
        r"statistics\.covariates\[1\]: 'sise' is not a known covariate; write one of 'family'",
    ),
]


@pytest.mark.parametrize(("sections", "marker", "pattern"), ERRORS)
def test_error_names_file_line_problem_and_fix(tmp_path, sections, marker, pattern):
    text = study(**sections)
    message = error_of(tmp_path, text)
    line = 1 if marker is None else line_of(text, marker)
    assert message.startswith(f"{tmp_path / 'study.toml'}:{line}: "), message
    assert re.search(pattern, message), message


def test_misspelt_required_key_reports_the_spelling_not_the_absence(tmp_path):
    text = study(study='[study]\nnmae = "t"\nquestion = "q"\noutput = "o"\n')
    message = error_of(tmp_path, text)
    assert f":{line_of(text, 'nmae')}: unknown key 'nmae' in [study]; did you mean 'name'?" in (
        message
    )


def test_first_error_in_the_file_is_reported(tmp_path):
    text = study(
        study='[study]\nname = "t"\nquestion = "q"\noutput = "o"\nseed = -1\n',
        statistics="[statistics]\nbootstrap = -1\n",
    )
    assert f":{line_of(text, 'seed')}: study.seed = -1 must be >= 0" in error_of(tmp_path, text)


def test_dotted_keys_and_subtables_are_located(tmp_path):
    text = study(brain='[brain]\nnsd = "a"\n\n[brain.simulated]\nstimuli = "builtin:digits"\n')
    assert f":{line_of(text, 'nsd =')}: brain.nsd: give exactly one" in error_of(tmp_path, text)
    text = "alignment.k = 7\n" + study()
    assert ":1: alignment.k: alignment.k = 7 is not among" in error_of(tmp_path, text)


def test_key_lines_skips_strings_and_comments():
    text = (
        'title = "a = b # c"  # comment = 1\n'
        '[study]\nnote = """\nfake = 1\n[fake]\n"""\n'
        "real = 2\n"
        "'quoted key' = {a = [1, {b = 2}]}\n"
    )
    lines = key_lines(text)
    assert lines[("title",)] == 1
    assert lines[("study", "real")] == 7
    assert ("study", "fake") not in lines and ("fake",) not in lines
    assert lines[("study", "quoted key", "a", 1, "b")] == 8
