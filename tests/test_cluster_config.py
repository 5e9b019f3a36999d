"""The ``[cluster]`` table: it parses and is checked like every table, it never changes a stage's
key, its SLURM settings reach the job script, and the executors it builds close what they start.

No SLURM is needed: the job script is built without submitting it, and the end-to-end test runs
the submitted script through a stand-in ``sbatch`` on this machine.
"""

from __future__ import annotations

import json
import operator
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, invoke
from repscope._validation import InputError
from repscope.experiment.config import ClusterSection, load_config, parse_config
from repscope.experiment.executor import DaskExecutor, cluster_executor, slurm_cluster
from repscope.experiment.run import plan_study
from test_config import error_of as config_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STUDY = """\
[study]
name = "t"
question = "Does it?"
output = "out"
device = "cpu"

[models]
specs = ["minizoo:cnn-w8-d1-n500", "minizoo:cnn-w8-d2-n1000", "minizoo:mlp-w64-d1-n500"]

[stimuli]
source = "builtin:digits"
n_images = 40

[brain]
simulated = { stimuli = "builtin:digits", n_images = 40 }
k = 50
"""
SLURM = """\
[cluster]
kind = "slurm"
jobs = 3
cores = 16
memory = "64GB"
processes = 4
queue = "gpu"
account = "lab42"
walltime = "1-02:00:00"
job_extra_directives = ["--gres=gpu:1", "--constraint=a100"]
job_script_prologue = ["module load cuda/12", "source /shared/venv/bin/activate"]
local_directory = "$TMPDIR"
python = "/shared/venv/bin/python"
"""
MINIMAL = '[cluster]\nkind = "slurm"\ncores = 8\nmemory = "16GB"\n'


def cluster_of(text: str, tmp_path: Path) -> ClusterSection:
    return parse_config(STUDY + text, base_dir=tmp_path).cluster


# ---- parsing ----------------------------------------------------------------------------------


def test_slurm_table_parses(tmp_path):
    cluster = cluster_of(SLURM, tmp_path)
    assert (cluster.kind, cluster.jobs, cluster.cores, cluster.processes) == ("slurm", 3, 16, 4)
    assert (cluster.memory, cluster.queue, cluster.account) == ("64GB", "gpu", "lab42")
    assert cluster.walltime == "1-02:00:00"
    assert cluster.job_extra_directives == ("--gres=gpu:1", "--constraint=a100")
    assert cluster.job_script_prologue == (
        "module load cuda/12",
        "source /shared/venv/bin/activate",
    )
    assert (cluster.local_directory, cluster.python) == ("$TMPDIR", "/shared/venv/bin/python")
    assert cluster.worker_processes == 4


def test_defaults_and_other_kinds(tmp_path):
    assert parse_config(STUDY, base_dir=tmp_path).cluster is None
    cluster = cluster_of(MINIMAL, tmp_path)
    assert (cluster.jobs, cluster.processes, cluster.worker_processes) == (1, None, 8)
    assert cluster.job_extra_directives == cluster.job_script_prologue == ()
    assert cluster.queue is cluster.walltime is cluster.python is None
    assert cluster_of('[cluster]\nkind = "local"\nworkers = 3\n', tmp_path).workers == 3
    text = '[cluster]\nkind = "scheduler"\naddress = "tcp://head:8786"\n'
    assert cluster_of(text, tmp_path).address == "tcp://head:8786"


@pytest.mark.parametrize("memory", ["16GB", "16 GiB", "512M", "1.5T", "16gb", "16Gi"])
def test_memory_sizes_dask_reads(tmp_path, memory):
    from dask.utils import parse_bytes

    text = MINIMAL.replace('"16GB"', json.dumps(memory))
    assert parse_bytes(cluster_of(text, tmp_path).memory) > 0


@pytest.mark.parametrize("walltime", ["30", "30:00", "04:00:00", "1-00", "1-04:00", "2-04:00:00"])
def test_slurm_time_formats(tmp_path, walltime):
    text = MINIMAL + f'walltime = "{walltime}"\n'
    assert cluster_of(text, tmp_path).walltime == walltime


def test_example_slurm_study_loads():
    config = load_config(EXAMPLES / "slurm_study.toml")
    paper = load_config(EXAMPLES / "paper_nsd.toml")
    assert config.cluster.kind == "slurm" and config.cluster.jobs >= 1
    assert config.cluster.job_script_prologue and config.cluster.python
    assert config.model_specs == paper.model_specs
    assert config.alignment == paper.alignment and config.dimension == paper.dimension


# ---- where the work runs does not change the results ------------------------------------------


def test_cluster_changes_no_stage_key_digest_or_dict(tmp_path):
    without = parse_config(STUDY, base_dir=tmp_path)
    for table in (SLURM, '[cluster]\nkind = "local"\nworkers = 2\n'):
        with_cluster = parse_config(STUDY + table, base_dir=tmp_path)
        assert with_cluster.cluster is not None
        keys = [(s.kind, s.name, s.key) for s in plan_study(with_cluster, n_images=10)]
        assert keys == [(s.kind, s.name, s.key) for s in plan_study(without, n_images=10)]
        assert with_cluster.config_digest() == without.config_digest()
        data = with_cluster.to_dict()
        assert "cluster" not in data
        assert json.loads(json.dumps(data)) == json.loads(json.dumps(without.to_dict()))


# ---- mistakes: one line, at the key -----------------------------------------------------------

S = '[cluster]\nkind = "slurm"\ncores = 16\nmemory = "16GB"\n'
ERRORS = [
    # ([cluster] text, marker on the reported line, message pattern)
    (
        '[cluster]\nkind = "slurmm"\n',
        "kind",
        r"cluster\.kind: 'slurmm' is not a known cluster kind \(did you mean 'slurm'\?\); "
        r"write one of 'local', 'scheduler', 'slurm'\.",
    ),
    ("[cluster]\ncores = 4\n", "[cluster]", r"\[cluster\] lacks the required key 'kind'"),
    (
        '[cluster]\nkind = "slurm"\n',
        "kind",
        r'cluster\.kind: kind = "slurm" needs cores and memory; add cores = 16 and '
        r'memory = "16GB" under \[cluster\]\.',
    ),
    (
        '[cluster]\nkind = "local"\n',
        "kind",
        r'kind = "local" needs workers; add workers = 2 under \[cluster\]\.',
    ),
    (
        '[cluster]\nkind = "scheduler"\n',
        "kind",
        r'needs address; add address = "tcp://host:8786"',
    ),
    (
        '[cluster]\nkind = "local"\nworkers = 2\ncores = 4\n',
        "cores",
        r'cluster\.cores: cores is a setting of kind = "slurm", not of kind = "local"; '
        r'remove it or set kind = "slurm"\.',
    ),
    (
        '[cluster]\nkind = "slurm"\ncores = 4\nmemory = "8GB"\nworkers = 2\n',
        "workers",
        r'cluster\.workers: workers is a setting of kind = "local"',
    ),
    ("[cluster]\nkind = 'local'\nworkers = 0\n", "workers", r"cluster\.workers = 0 must be > 0"),
    (S.replace("cores = 16", "cores = 0"), "cores", r"cluster\.cores = 0 must be > 0"),
    (S + "jobs = -1\n", "jobs", r"cluster\.jobs = -1 must be > 0; .*e\.g\. jobs = 1\."),
    (
        S + "processes = 32\n",
        "processes",
        r"cluster\.processes: processes = 32 is more than cores = 16; .*lower processes",
    ),
    (
        S.replace('"16GB"', '"16 gigs"'),
        "memory",
        r"cluster\.memory: '16 gigs' is not an amount of memory; write a size with its unit, "
        r'e\.g\. "16GB"\.',
    ),
    (S.replace('"16GB"', '"16"'), "memory", r"'16' is not an amount of memory"),
    (
        S.replace('"16GB"', "16"),
        "memory",
        r'cluster\.memory is an integer \(16\), expected a string such as "16GB"',
    ),
    (
        S + 'walltime = "2h"\n',
        "walltime",
        r"cluster\.walltime: '2h' is not a SLURM time limit; write \"HH:MM:SS\"",
    ),
    (S + "walltime = 120\n", "walltime", r"cluster\.walltime is an integer \(120\), expected"),
    (
        S + 'job_extra_directives = ["--gres=gpu:1", "#SBATCH --exclusive"]\n',
        "job_extra_directives",
        r"cluster\.job_extra_directives\[1\]: '#SBATCH --exclusive' starts with #SBATCH, .*; "
        r'write the option alone, e\.g\. "--gres=gpu:1"\.',
    ),
    (
        S + 'job_extra_directives = "--gres=gpu:1"\n',
        "job_extra_directives",
        r"cluster\.job_extra_directives is a string .*, expected an array",
    ),
    (
        S + 'job_script_prologue = ["module load cuda", 3]\n',
        "job_script_prologue",
        r"cluster\.job_script_prologue\[1\] is an integer \(3\), expected a string",
    ),
    (S + 'queue = ""\n', "queue", r"cluster\.queue is empty; give it a value\."),
    (
        S + 'partition = "gpu"\n',
        "partition",
        r"unknown key 'partition' in \[cluster\]; valid keys: kind, workers, .*queue",
    ),
    ('[clustr]\nkind = "local"\n', "[clustr]", r"unknown section \[clustr\]; did you mean"),
]


@pytest.mark.parametrize(("cluster", "marker", "pattern"), ERRORS)
def test_error_names_the_key_and_the_fix(tmp_path, cluster, marker, pattern):
    text = STUDY + cluster
    message = config_error(tmp_path, text)
    line = text[: text.index(marker)].count("\n") + 1
    assert message.startswith(f"{tmp_path / 'study.toml'}:{line}: "), message
    assert re.search(pattern, message), message


def test_dry_run_checks_the_cluster_table(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY + S + "processes = 32\n")
    assert_one_line_error(
        invoke("run", path, "--dry-run"), r"study\.toml:\d+: cluster\.processes: processes = 32"
    )
    path.write_text(STUDY + SLURM)  # a valid table: planned without contacting SLURM
    result = invoke("run", path, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stages"][-1]["stage"] == "report"


# ---- the job script ---------------------------------------------------------------------------


def test_job_script_carries_the_slurm_settings(tmp_path):
    cluster = slurm_cluster(cluster_of(SLURM, tmp_path))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for directive in (
        "#SBATCH -p gpu",
        "#SBATCH -A lab42",
        "#SBATCH -t 1-02:00:00",
        "#SBATCH --cpus-per-task=16",  # every core of the job is booked...
        "#SBATCH --mem=60G",  # 64 GB, in the GiB SLURM counts
        "#SBATCH --gres=gpu:1",
        "#SBATCH --constraint=a100",
        "module load cuda/12",
        "source /shared/venv/bin/activate",
    ):
        assert directive in lines, (directive, script)
    # the prologue runs before the worker, which the configured interpreter starts
    assert lines.index("source /shared/venv/bin/activate") < len(lines) - 1
    worker = lines[-1]
    assert worker.startswith("/shared/venv/bin/python -m distributed.cli.dask_worker ")
    # ...and split into 4 single-threaded workers: a task pins its own thread count
    assert "--nworkers 4" in worker and "--nthreads 1 " in worker
    assert "--local-directory $TMPDIR" in worker


def test_job_script_defaults(tmp_path):
    cluster = slurm_cluster(cluster_of(MINIMAL, tmp_path))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=8" in script
    assert "#SBATCH --mem=15G" in script  # 16 GB
    assert "--nworkers 8" in script and "--nthreads 1 " in script  # one worker per core
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script


# ---- building and closing executors -----------------------------------------------------------


class _Closable:
    def __init__(self, name: str, log: list[str], fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails

    def close(self) -> None:
        self.log.append(self.name)
        if self.fails:
            raise RuntimeError(f"{self.name} failed to close")


def test_close_closes_the_client_then_the_cluster_it_started():
    log: list[str] = []
    DaskExecutor(_Closable("client", log), cluster=_Closable("cluster", log)).close()
    assert log == ["client", "cluster"]
    DaskExecutor(_Closable("outside client", log)).close()  # a cluster it did not start stays
    assert log[-1] == "outside client"
    failing = DaskExecutor(_Closable("client", log, fails=True), cluster=_Closable("cluster", log))
    with pytest.raises(RuntimeError):
        failing.close()
    assert log[-2:] == ["client", "cluster"]  # the jobs are cancelled even so


def test_local_and_scheduler_kinds_build_dask_executors(tmp_path, monkeypatch):
    from repscope.experiment import executor as module

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(module, "dask_executor", lambda **kw: calls.append(kw) or "executor")
    local = cluster_of('[cluster]\nkind = "local"\nworkers = 3\n', tmp_path)
    remote = cluster_of('[cluster]\nkind = "scheduler"\naddress = "tcp://h:8786"\n', tmp_path)
    assert cluster_executor(local) == cluster_executor(remote) == "executor"
    assert calls == [{"workers": 3}, {"scheduler": "tcp://h:8786"}]


def test_command_line_overrides_the_cluster_table(tmp_path, monkeypatch):
    from repscope import _cli_run
    from repscope.experiment import executor as module

    log: list = []

    def fake(kind: str):
        def build(*args: object, **kwargs: object) -> _Closable:
            log.append((kind, args, kwargs))
            return _Closable(f"closed {kind}", log)

        return build

    monkeypatch.setattr(module, "dask_executor", fake("dask"))
    monkeypatch.setattr(module, "cluster_executor", fake("cluster"))
    cluster = cluster_of(SLURM, tmp_path)
    with _cli_run._executor(2, None, cluster):
        pass
    assert log == [("dask", (), {"workers": 2, "scheduler": None}), "closed dask"]
    with _cli_run._executor(None, "tcp://h:1", cluster):
        pass
    assert log[-2][2] == {"workers": None, "scheduler": "tcp://h:1"}
    with _cli_run._executor(None, None, cluster):
        pass
    assert log[-2:] == [("cluster", (cluster,), {}), "closed cluster"]
    with _cli_run._executor(None, None, None) as executor:
        assert executor is None  # in process


def test_run_without_sbatch_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "study.toml"
    path.write_text(STUDY + MINIMAL)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    result = invoke("run", path, "--no-progress")
    assert_one_line_error(result, r'\[cluster\] kind = "slurm" but sbatch is not on the PATH; ')
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="sbatch is not on the PATH"):
        cluster_executor(cluster_of(MINIMAL, tmp_path))
    # --workers and --scheduler together is still an error, whatever [cluster] says
    result = invoke("run", path, "--workers", 2, "--scheduler", "tcp://h:8786")
    assert_one_line_error(result, r"pass exactly one of workers=N, scheduler=ADDRESS")


SBATCH = """#!/usr/bin/env bash
# stand-in for sbatch: keep the script, run it in its own session, print the session as job id
cp "$1" "$FAKE_SLURM/job.sh"
setsid bash "$FAKE_SLURM/job.sh" >"$FAKE_SLURM/job.log" 2>&1 </dev/null &
echo "$!" >"$FAKE_SLURM/job.id"
echo "Submitted batch job $!"
"""
SCANCEL = """#!/usr/bin/env bash
for id in "$@"; do kill -- "-$id" 2>/dev/null; done
exit 0
"""


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("setsid") is None, reason="needs bash and setsid"
)
def test_slurm_executor_submits_runs_and_cancels(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", SBATCH), ("scancel", SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(tmp_path))
    table = '[cluster]\nkind = "slurm"\ncores = 1\nmemory = "1GB"\nwalltime = "00:10:00"\n'
    executor = cluster_executor(cluster_of(table, tmp_path))
    try:
        done: list[int] = []
        results = executor.map(operator.add, [(1, 2), (3, 4)], advance=lambda: done.append(1))
        assert results == [3, 7] and len(done) == 2
        workers = executor.client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1]
    finally:
        executor.close()
        job = int((tmp_path / "job.id").read_text())
    assert "#SBATCH -t 00:10:00" in (tmp_path / "job.sh").read_text()
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:  # close() cancelled the job: its workers end
            os.killpg(job, 0)
            time.sleep(0.1)
        pytest.fail("the job's processes outlived close()")
    except ProcessLookupError:
        pass
    finally:
        try:
            os.killpg(job, signal.SIGKILL)
        except ProcessLookupError:
            pass
