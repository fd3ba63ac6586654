"""The grid as SLURM jobs (`cxrtransfer slurm`) on a real single-node SLURM cluster started in a temporary folder.

The fixture starts munged, slurmctld and slurmd from Debian's packages (`make test-slurm` installs
them) with a config written here. There is no slurmdbd, so `sacct` does not work: the job states and
exit codes come from `scontrol show job` (completed jobs stay visible for MinJobAge seconds).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmarks.common import deep_merge
from cxrtransfer.lab import cli, rehearsal, slurm
from cxrtransfer.training import checkpoints

REPO = Path(__file__).resolve().parents[2]
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")

# Two architectures, one init, tiny images: 5 model stages (2 init, 2 train, 1 truncate).
TINY = {
    "model": "all",
    "architectures": ["resnet18", "mobilenet_v3"],
    "seeds": [0],   # the seed-0 note stages only (the demo trains two seeds)
    "inits": {"random": ["random"], "weights": [], "indomain": []},
    "synthetic": {"train_patients": 30, "valid_patients": 12, "test_patients": 16, "height": 36, "width": 40,
                  "max_studies_per_patient": 2, "labels": "invented"},
    "source": {"images_per_class": 4, "height": 36, "width": 40},
    "data": {"image_size": 32},
    "pretrain": {"data": {"image_size": 32}},
    "train": {"epochs": 1, "eval_every_images": 32, "top_k": 2, "batch_size": 16, "max_images": 0},
    "bootstrap": {"replicates": 50},
    "truncation": {"architectures": ["resnet18"], "blocks": [1], "init": "random"},
}
# The stage this test cancels halfway: more evaluations (each one saves the resume state), so there is a halfway.
CANCELLED = "train_random@mobilenet_v3-random"
TINY_OVERRIDES = {"mobilenet_v3": {"seed": 0, "epochs": 3}}


def missing_slurm() -> str:
    missing = [d for d in DAEMONS if not shutil.which(d, path=os.environ["PATH"] + ":/usr/sbin:/sbin")]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} not found): `make test-slurm` installs slurm-wlm and munge"
    if os.geteuid() != 0:
        return "the single-node SLURM cluster needs root (slurmd launches the jobs): run `make test-slurm` as root"
    return ""


needs_slurm = pytest.mark.skipif(bool(missing_slurm()), reason=missing_slurm() or "-")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder: Path, host: str, cpus: int, memory_mb: int) -> str:
    ctld, slurmd_port = free_port(), free_port()
    return f"""ClusterName=cxrtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/ctld
SlurmdSpoolDir={folder}/slurmd
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=3600
SchedulerType=sched/backfill
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """munged + slurmctld + slurmd on this machine; yields the environment the SLURM commands need."""
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("ctld", "slurmd"):
        (folder / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    (folder / "slurm.conf").write_text(slurm_conf(folder, host, cpus=2, memory_mb=2000))
    (folder / "munge.key").write_bytes(os.urandom(1024))
    (folder / "munge.key").chmod(0o400)
    env = dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"), PATH=f"{os.environ['PATH']}:/usr/sbin:/sbin")
    munged = subprocess.Popen(["munged", "--foreground", "--force", f"--socket={folder}/munge.socket",
                               f"--key-file={folder}/munge.key", f"--pid-file={folder}/munged.pid",
                               f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed"], env=env)
    daemons = [munged]
    try:
        wait_for(lambda: (folder / "munge.socket").exists(), 20, "munged socket")
        daemons.append(subprocess.Popen(["slurmctld", "-D", "-i"], env=env))
        daemons.append(subprocess.Popen(["slurmd", "-D"], env=env))
        wait_for(lambda: "idle" in run(["sinfo", "--noheader", "--format=%T"], env, check=False).stdout, 60,
                 f"an idle node (logs in {folder})")
        yield env
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()


def wait_for(condition, seconds: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def run(args: list[str], env: dict, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def job_env(env: dict) -> dict:
    return dict(rehearsal.repo_env(env), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def make_repo(path: Path, env: dict, overrides: dict | None = None) -> Path:
    """A git + DVC repository holding the project's pipeline with the tiny params."""
    path.mkdir(parents=True)
    shutil.copy2(REPO / "dvc.yaml", path / "dvc.yaml")
    for folder in ("stages", "cxrtransfer"):
        shutil.copytree(REPO / folder, path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params["overrides"].update(overrides or TINY_OVERRIDES)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (path / ".gitignore").write_text("/.state/\n/.slurm/\n__pycache__/\n")
    run(["git", "init", "-q", "-b", "main"], env, path)
    run(["dvc", "init", "-q"], env, path)
    (path / ".dvcignore").write_text("/.slurm/\n")
    run(["dvc", "config", "core.analytics", "false"], env, path)
    run(["git", "add", "-A"], env, path)
    run(["git", "commit", "-qm", "tiny pipeline"], env, path)
    return path


def submit(repo: Path, env: dict) -> dict:
    run([sys.executable, "-m", "cxrtransfer.lab", "slurm", "--json", "--cpus-per-job", "1"], env, repo)
    return json.loads((repo / ".slurm" / "last-submission.json").read_text())


def job_state(job: str, env: dict) -> dict[str, str]:
    shown = run(["scontrol", "show", "job", "--oneliner", job], env).stdout
    return dict(re.findall(r"(\w+)=(\S+)", shown))


def wait_for_jobs(jobs: list[str], env: dict, seconds: float = 600) -> dict[str, dict]:
    final = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
    return wait_for(lambda: (lambda s: s if all(v["JobState"] in final for v in s.values()) else None)(
        {j: job_state(j, env) for j in jobs}), seconds, f"jobs {jobs}", poll=2)


def test_plan_follows_any_stage_names():
    """Model stages are DVC's matrix items whatever their group names; downstream of a scheduled stage runs too."""
    pipeline = slurm.Pipeline(
        order=["prep", "init_random@a", "init_imagenet@a", "fit@a-random", "fit@a-imagenet", "study"],
        upstream={"prep": set(), "init_random@a": {"prep"}, "init_imagenet@a": {"prep"},
                  "fit@a-random": {"init_random@a", "prep"}, "fit@a-imagenet": {"init_imagenet@a", "prep"},
                  "study": {"fit@a-random", "fit@a-imagenet"}})
    prepare, scheduled = slurm.plan(pipeline, done=lambda s: s != "init_random@a")
    assert prepare == ["prep"] and scheduled == ["init_random@a", "fit@a-random"]
    assert slurm.plan(pipeline, done=lambda s: True) == ([], [])
    assert slurm.model_upstream("study", pipeline.upstream) == {"fit@a-random", "fit@a-imagenet"}


def test_multi_gpu_stage_asks_for_its_devices(tmp_path, capsys):
    """train.devices > 1 (here through overrides.<arch>) becomes one job holding that many GPUs."""
    env = job_env(dict(os.environ))
    repo = make_repo(tmp_path / "repo", env, overrides={"resnet18": {"seed": 0, "devices": 2}})
    pipeline = slurm.read_pipeline(repo)
    assert pipeline.devices["train_random@resnet18-random"] == 2 and pipeline.devices["train_random@mobilenet_v3-random"] == 1
    assert pipeline.devices["init_random@resnet18-random"] == 1
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        cli.main(["slurm", "--dry-run", "--gpus-per-job", "1", "--cpus-per-job", "4", "--partition", "gpu",
                  "--time", "2:00:00", "--mem", "16G"])
    finally:
        os.chdir(cwd)
    commands = {line.split("--job-name=")[1].split()[0]: line for line in capsys.readouterr().out.splitlines()
                if "sbatch" in line}
    assert "--gpus=2" in commands["train_random@resnet18-random"] and "--cpus-per-task=8" in commands["train_random@resnet18-random"]
    assert "--gpus=1" in commands["train_random@mobilenet_v3-random"] and "--partition=gpu" in commands["study"]
    assert "--gpus" not in commands["study"] and "--time=2:00:00" in commands["init_random@resnet18-random"]
    assert "--output=" + str(repo / ".slurm" / "logs" / "train_random@resnet18-random-%j.log") in commands["train_random@resnet18-random"]
    assert "dvc repro train_random@resnet18-random" in (repo / ".slurm" / "jobs" / "train_random@resnet18-random.sh").read_text()


def test_uncommitted_pipeline_changes_stop_the_submission(tmp_path):
    env = job_env(dict(os.environ))
    repo = make_repo(tmp_path / "repo", env)
    with open(repo / "params.yaml", "a") as f:
        f.write("# edited\n")
    done = run([sys.executable, "-m", "cxrtransfer.lab", "slurm", "--dry-run"], env, repo, check=False)
    assert done.returncode != 0 and "params.yaml" in done.stderr and "commit first" in done.stderr
    assert not (repo / ".slurm" / "jobs").exists()


@pytest.mark.slow
def test_stage_plan_from_dvc(tmp_path):
    """Stages and their order come from DVC; model stages depend on their upstream model stages."""
    repo = make_repo(tmp_path / "repo", job_env(dict(os.environ)))
    pipeline = slurm.read_pipeline(repo)
    models = [s for s in pipeline.order if slurm.is_model_stage(s)]
    # seed_*-0: the seed groups' seed-0 items (a note naming the configured run; params seeds)
    assert sorted(models) == ["init_random@mobilenet_v3-random", "init_random@resnet18-random",
                              "seed_random@mobilenet_v3-random-0", "seed_random@resnet18-random-0",
                              "seed_truncate@resnet18-1-0",
                              "train_random@mobilenet_v3-random", "train_random@resnet18-random", "truncate@resnet18-1"]
    assert slurm.model_upstream("train_random@resnet18-random", pipeline.upstream) == {"init_random@resnet18-random"}
    prepare, scheduled = slurm.plan(pipeline, done=lambda s: False)
    # random inits read no source data: the in-domain source stages are not upstream of any model stage
    assert set(prepare) == {"synthesize", "preprocess", "split", "normalization"}
    assert scheduled.index("init_random@resnet18-random") < scheduled.index("truncate@resnet18-1")


@pytest.mark.slow
@needs_slurm
def test_grid_on_slurm_matches_plain_repro_and_resumes_after_cancel(cluster, tmp_path):
    env = job_env(cluster)
    repo = make_repo(tmp_path / "repo", env)
    plain = tmp_path / "plain"
    run(["git", "clone", "-q", str(repo), str(plain)], env)

    first = submit(repo, env)
    jobs = first["jobs"]
    assert set(first["model_jobs"]) == {"init_random@mobilenet_v3-random", "init_random@resnet18-random", CANCELLED,
                                        "train_random@resnet18-random", "truncate@resnet18-1",
                                        "seed_random@mobilenet_v3-random-0", "seed_random@resnet18-random-0",
                                        "seed_truncate@resnet18-1-0"}
    assert job_state(jobs[CANCELLED], env)["JobName"] == CANCELLED
    # Submitted again while the grid is queued: no stage twice; the new study job replaces the pending one.
    again = submit(repo, env)
    assert again["model_jobs"] == [] and list(again["jobs"]) == ["study"]
    assert job_state(jobs["study"], env)["JobState"] == "CANCELLED"
    waits_for = set(re.findall(r"afterok:(\d+)", job_state(again["jobs"]["study"], env)["Dependency"]))
    assert jobs[CANCELLED] in waits_for and waits_for <= {jobs[s] for s in first["model_jobs"]}  # done ones drop out
    # Cancel the long train stage halfway: once it has saved a resume state in its clone.
    resume = repo / ".slurm" / "work" / CANCELLED / ".state" / "train" / "mobilenet_v3-random" / checkpoints.STATE_FILE

    def saved_or_ended() -> bool:
        if resume.is_file():
            return True
        state = job_state(jobs[CANCELLED], env)["JobState"]
        assert state in ("PENDING", "RUNNING"), f"{CANCELLED} ended ({state}) before it saved a resume state"
        return False

    wait_for(saved_or_ended, 400, f"{resume}", poll=0.2)
    run(["scancel", jobs[CANCELLED]], env)
    states = wait_for_jobs([*jobs.values(), again["jobs"]["study"]], env)
    assert states[jobs[CANCELLED]]["JobState"] == "CANCELLED"
    assert states[again["jobs"]["study"]]["JobState"] == "CANCELLED"  # --kill-on-invalid-dep: its dependency failed
    assert all(states[jobs[s]]["JobState"] == "COMPLETED" for s in first["model_jobs"] if s != CANCELLED)

    # Resubmitted: only the cancelled stage trains again, from its saved state.
    second = submit(repo, env)
    assert second["model_jobs"] == [CANCELLED]
    states = wait_for_jobs(list(second["jobs"].values()), env)
    assert {s["JobState"] for s in states.values()} == {"COMPLETED"}
    assert {s["ExitCode"] for s in states.values()} == {"0:0"}
    log = (repo / ".slurm" / "logs" / f"{CANCELLED}-{second['jobs'][CANCELLED]}.log").read_text()
    assert "resuming at" in log and "Running stage 'train_random@mobilenet_v3-random'" in log
    study_log = (repo / ".slurm" / "logs" / f"study-{second['jobs']['study']}.log").read_text()
    assert "Running stage 'train_" not in study_log and "Running stage 'ensemble'" in study_log

    # A finished grid: nothing to schedule.
    third = submit(repo, env)
    assert third["model_jobs"] == [] and third["jobs"] == {}

    run(["dvc", "repro"], env, plain)
    for name in ("bootstrap.json", "ensemble.json"):
        assert json.loads((repo / "metrics" / name).read_text()) == json.loads((plain / "metrics" / name).read_text())
