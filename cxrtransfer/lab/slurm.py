"""The training grid as SLURM jobs over one shared DVC cache: SLURM schedules, DVC decides what runs.

    cxrtransfer slurm [--partition gpu] [--gpus-per-job 1] [--cpus-per-job 8] [--mem 32G]
                      [--time 24:00:00] [--account lab] [--work-dir .slurm] [--dry-run]

Stages and their order come from DVC (`Repo.index.graph`). Matrix/foreach items (DVC names them
`<group>@<key>`: init_<kind>@..., train_<kind>@..., truncate@...) are model stages: one job each, named after the
stage, depending (`afterok`) on the jobs of its upstream model stages. A `prepare` job first runs the
plain stages they need (preprocess, split, ...); a `study` job last runs `dvc repro` in this
workspace, which restores every model stage from the run-cache and runs the study-level stages.

Every job but the last works in its own git clone, `<work-dir>/work/<stage>`, of the submitted commit,
all on this workspace's DVC cache (`dvc cache dir`): `dvc checkout --with-deps <stage>`, then
`dvc repro <stage>` (upstream stages restore from the run-cache, the stage itself runs and records its
run-cache entry). The clone persists, so a cancelled train stage resumes from its `.state/` there.
A stage is skipped at submission when DVC reports it (and its upstream) unchanged in this workspace
or in its clone at this commit, or when a job of that name from this work dir is already queued.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import networkx as nx
from dvc.repo import Repo

from ..errors import InputError, PipelineError
from ..pipeline.config import check, load_params
from ..pipeline.grid import declared_models, init_stages, training_seeds

PREPARE_JOB = "prepare"
STUDY_JOB = "study"
DRY_RUN = "(dry run)"


@dataclass(frozen=True)
class Pipeline:
    """Stage names in run order, each stage's direct upstream stages, and GPUs per model stage."""
    order: list[str]
    upstream: dict[str, set[str]]
    devices: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Resources:
    partition: str = ""
    account: str = ""
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    mem: str = ""
    time: str = ""
    extra: tuple[str, ...] = ()


def is_model_stage(name: str) -> bool:
    """Matrix and foreach items: DVC names them `<group>@<key>`."""
    return "@" in name


def read_pipeline(root: Path) -> Pipeline:
    """The pipeline as DVC sees it (dvc.yaml, params), via dvc's Python API; GPUs per train stage
    (train.devices with the architecture's overrides) from the grid that params.yaml declares."""
    with contextlib.chdir(root), Repo(".") as repo:  # stage names as the dvc CLI prints them in root
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        names = {stage: stage.addressing for stage in graph.nodes}
        order = [names[s] for s in reversed(list(nx.topological_sort(graph)))]
        upstream = {names[s]: {names[d] for d in graph.successors(s)} for s in graph.nodes}
    source = root / "params.yaml"
    params = load_params(source)
    devices = {stage: 1 for stage in init_stages(params)}
    devices.update({model.stage: check(params, ["data", "train"], source, arch=model.arch)["train"]["devices"]
                    for model in declared_models(params)})
    devices.update({model.seed_stage(seed): devices[model.stage] for model in declared_models(params)
                    for seed in training_seeds(params, source)})   # repeats (params seeds) train like their model
    return Pipeline(order, upstream, devices)


def ancestors(stage: str, upstream: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(upstream.get(stage, ()))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(upstream.get(name, ()))
    return seen


def model_upstream(stage: str, upstream: Mapping[str, set[str]]) -> set[str]:
    """The nearest model stages upstream of `stage` (looking through plain stages in between)."""
    found: set[str] = set()
    todo = list(upstream.get(stage, ()))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if is_model_stage(name):
            found.add(name)
        else:
            todo.extend(upstream.get(name, ()))
    return found


def plan(pipeline: Pipeline, done: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """(plain stages for the prepare job, model stages to submit in run order).

    A model stage is submitted unless `done(stage)`, and always when an upstream model stage is.
    """
    scheduled: list[str] = []
    for name in pipeline.order:
        if not is_model_stage(name):
            continue
        if any(u in scheduled for u in model_upstream(name, pipeline.upstream)) or not done(name):
            scheduled.append(name)
    prepare = set()
    for name in scheduled:
        prepare |= {a for a in ancestors(name, pipeline.upstream)
                    if not is_model_stage(a) and not any(is_model_stage(x) for x in ancestors(a, pipeline.upstream))}
    return [s for s in pipeline.order if s in prepare], scheduled


def file_name(stage: str) -> str:
    """A stage name as a file name (`sub/dvc.yaml:train@x` -> `sub_dvc.yaml_train@x`)."""
    return stage.replace("/", "_").replace(":", "_")


def clone_script(workspace: Path, clone: Path, commit: str, cache: dict[str, str], dvc_commands: Sequence[str]) -> str:
    """Bash for one job: a persistent clone of `commit` on the shared cache, then `dvc_commands` in it."""
    q = shlex.quote
    # What `dvc config --local cache.<key> <value>` writes, without starting dvc once per key.
    settings = "printf '%s\\n' '[cache]' " + " ".join(q(f"    {k} = {v}") for k, v in cache.items()) + " > .dvc/config.local"
    return f"""#!/bin/bash
set -euo pipefail
export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
# One job per clone at a time: a second job for the same stage stops here instead of sharing the workspace.
exec 9>{q(str(clone))}.lock
flock --nonblock 9 || {{ echo "another job is working in {clone}" >&2; exit 75; }}
fresh=""
if [ ! -d {q(str(clone))}/.git ]; then git clone --quiet --no-checkout {q(str(workspace))} {q(str(clone))}; fresh=1; fi
cd {q(str(clone))}
if [ -n "$fresh" ] || [ "$(git rev-parse HEAD)" != {commit} ]; then
  git fetch --quiet origin && git checkout --quiet --force {commit}
fi
{settings}
echo "$(date -u +%FT%TZ) $(hostname) commit {commit[:12]} in $PWD"
{chr(10).join(dvc_commands)}
echo "$(date -u +%FT%TZ) done"
"""


def model_commands(stage: str) -> list[str]:
    q = shlex.quote(stage)
    # Outputs the commit's dvc.lock records and the cache holds, then DVC runs what is left: upstream
    # stages restore from the run-cache (their jobs finished first), this stage runs and saves its entry.
    return [f"dvc checkout --quiet --with-deps {q} || true", f"dvc repro {q}"]


def study_script(workspace: Path) -> str:
    return f"""#!/bin/bash
set -euo pipefail
export OMP_NUM_THREADS=${{SLURM_CPUS_PER_TASK:-1}}
cd {shlex.quote(str(workspace))}
# Every model stage restores from the run-cache; the study-level stages run here.
dvc repro
dvc metrics show
"""


def sbatch_args(name: str, log: Path, chdir: Path, resources: Resources, gpus: int, cpus: int,
                after: Sequence[str]) -> list[str]:
    args = ["sbatch", "--parsable", f"--job-name={name}", f"--output={log}", f"--chdir={chdir}",
            "--nodes=1", "--ntasks=1", f"--cpus-per-task={cpus}", "--kill-on-invalid-dep=yes"]
    if resources.partition:
        args.append(f"--partition={resources.partition}")
    if resources.account:
        args.append(f"--account={resources.account}")
    if resources.mem:
        args.append(f"--mem={resources.mem}")
    if resources.time:
        args.append(f"--time={resources.time}")
    if gpus:
        args.append(f"--gpus={gpus}")
    if after:
        args.append("--dependency=afterok:" + ":".join(after))
    return args + list(resources.extra)


def run_text(args: Sequence[str], cwd: Path | None = None) -> str:
    done = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise PipelineError(f"`{' '.join(args)}` failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def queued_jobs(work_dir: Path, workspace: Path) -> dict[str, tuple[str, str]]:
    """Pending or running jobs of this work dir, and the study job of this workspace: name -> (id, state)."""
    listed = run_text(["squeue", "--noheader", "--states=PENDING,RUNNING,CONFIGURING,COMPLETING",
                       "--format=%i|%j|%T|%Z"])
    jobs = {}
    for line in listed.splitlines():
        job, name, state, chdir = line.strip().split("|", 3)
        here = Path(chdir).resolve()
        if here.is_relative_to(work_dir.resolve()) or (name == STUDY_JOB and here == workspace.resolve()):
            jobs[name] = (job, state)
    return jobs


def replace_study_job(queued: dict[str, tuple[str, str]]) -> None:
    """A pending study job from an earlier submission gives way to the new one (which waits for all jobs)."""
    if STUDY_JOB not in queued:
        return
    job, state = queued.pop(STUDY_JOB)
    if state != "PENDING":
        raise PipelineError(f"the study job {job} is {state} in this workspace: wait for it, then submit again")
    run_text(["scancel", job])
    print(f"cancelled the pending study job {job}: the new study job waits for every model job")


def workspace_changes(root: Path) -> set[str]:
    """Stages DVC reports changed in `root` (`dvc status`)."""
    with contextlib.chdir(root), Repo(".") as repo:
        return set(repo.status())


def clone_is_done(clone: Path, commit: str, stage: str) -> bool:
    """The stage's clone is at `commit` and DVC reports the stage and its upstream unchanged there."""
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True)
    if not (clone / ".dvc").is_dir() or head.stdout.strip() != commit:
        return False
    with contextlib.chdir(clone), Repo(".") as repo:
        return not repo.status(targets=[stage], with_deps=True)


def check_clean(root: Path) -> str:
    """The commit the jobs will check out; stops when tracked files (other than dvc.lock) differ from it."""
    changed = [line[3:] for line in run_text(["git", "status", "--porcelain", "--untracked-files=no"], root).splitlines()
               if line[3:] != "dvc.lock"]
    if changed:
        raise InputError(f"uncommitted changes in {', '.join(changed)}: the jobs run the committed pipeline, "
                         "so commit first", root)
    return run_text(["git", "rev-parse", "HEAD"], root).strip()


def shared_cache_config(root: Path, link_type: str) -> dict[str, str]:
    """Cache settings for every clone: this workspace's cache dir and sharing mode, `link_type` links."""
    with Repo(str(root)) as repo:
        cache = dict(repo.config.get("cache", {}))
        cache_dir = repo.cache.local_cache_dir
    settings = {"dir": str(Path(cache_dir).resolve())}
    if cache.get("shared"):
        settings["shared"] = str(cache["shared"])
    if link_type:
        settings["type"] = link_type
    return settings


@dataclass
class Launcher:
    """Writes a job's script to <work-dir>/jobs/<name>.sh and submits it (or, for a dry run, prints it)."""
    work_dir: Path
    resources: Resources
    dry_run: bool
    sbatch: Callable[[list[str]], str]
    jobs: dict[str, str] = field(default_factory=dict)

    def launch(self, name: str, script: str, chdir: Path, gpus: int, cpus: int, after: Sequence[str]) -> None:
        path = self.work_dir / "jobs" / f"{file_name(name)}.sh"
        path.write_text(script)
        log = self.work_dir / "logs" / f"{file_name(name)}-%j.log"
        after = [a for a in after if a != DRY_RUN]
        command = sbatch_args(name, log, chdir, self.resources, gpus, cpus, after) + [str(path)]
        if self.dry_run:
            print("  " + shlex.join(command))
        self.jobs[name] = DRY_RUN if self.dry_run else self.sbatch(command)
        print(f"  {self.jobs[name]:>10}  {name}" + (f"  after {','.join(after)}" if after else ""))

    def follow(self) -> None:
        ids = ",".join(j for j in self.jobs.values() if j != DRY_RUN)
        print(f"follow: squeue --jobs {ids} --format '%.10i %.32j %.10T %.10M %R'")
        print(f"        sacct --jobs {ids} --format JobID,JobName%32,State,ExitCode,Elapsed  (needs slurmdbd)")
        print(f"        scontrol show job <id>;  tail -f {self.work_dir / 'logs'}/<stage>-<id>.log")


def choose_stages(pipeline: Pipeline, root: Path, work_dir: Path, commit: str,
                  queued: Mapping[str, str]) -> tuple[list[str], list[str], set[str]]:
    """(plain stages for a prepare job, model stages to submit, stages DVC reports changed in `root`)."""
    changed = workspace_changes(root)

    def done(stage: str) -> bool:
        if stage in queued:
            return True  # its job is already in the queue: depend on it, never run it twice
        related = {stage} | ancestors(stage, pipeline.upstream)
        return not (related & changed) or clone_is_done(work_dir / "work" / file_name(stage), commit, stage)

    prepare, scheduled = plan(pipeline, done)
    # The prepare job puts the plain stages into the run-cache; once it has done so for this commit, no need.
    if PREPARE_JOB in queued or all(clone_is_done(work_dir / "work" / PREPARE_JOB, commit, s) for s in prepare):
        prepare = []
    return prepare, [s for s in scheduled if s not in queued], changed


def submit(args: argparse.Namespace, sbatch: Callable[[list[str]], str] | None = None) -> dict[str, Any]:
    root = Path(args.repo).resolve()
    work_dir = (root / args.work_dir).resolve()
    resources = Resources(args.partition, args.account, args.gpus_per_job, args.cpus_per_job, args.mem,
                          args.time, tuple(args.sbatch_arg))
    commit = check_clean(root)
    pipeline = read_pipeline(root)
    queued_state = {} if args.dry_run else queued_jobs(work_dir, root)
    if not args.dry_run:
        replace_study_job(queued_state)
    queued = {name: job for name, (job, _) in queued_state.items()}
    prepare, scheduled, changed = choose_stages(pipeline, root, work_dir, commit, queued)
    cache = shared_cache_config(root, args.link_type)
    for folder in ("work", "logs", "jobs"):
        (work_dir / folder).mkdir(parents=True, exist_ok=True)
    launcher = Launcher(work_dir, resources, args.dry_run, sbatch or (lambda a: run_text(a).strip().split(";")[0]))
    jobs = launcher.jobs
    models = [s for s in pipeline.order if is_model_stage(s)]
    print(f"commit {commit[:12]}: {len(scheduled)} model stage job(s), {len(models) - len(scheduled)} model "
          f"stage(s) skipped (up to date or already queued); cache {cache['dir']}")
    if prepare:
        commands = [f"dvc checkout --quiet --with-deps {shlex.quote(s)} || true" for s in prepare]
        commands.append("dvc repro " + " ".join(shlex.quote(s) for s in prepare))
        launcher.launch(PREPARE_JOB, clone_script(root, work_dir / "work" / PREPARE_JOB, commit, cache, commands),
                        work_dir, 0, resources.cpus_per_job, [])
    for stage in scheduled:
        devices = pipeline.devices.get(stage, 1)  # train.devices > 1: one node, torchrun inside the job
        upstream = [PREPARE_JOB, *sorted(model_upstream(stage, pipeline.upstream))]
        after = [jobs[n] if n in jobs else queued[n] for n in upstream if n in jobs or n in queued]
        script = clone_script(root, work_dir / "work" / file_name(stage), commit, cache, model_commands(stage))
        launcher.launch(stage, script, work_dir, resources.gpus_per_job * devices, resources.cpus_per_job * devices,
                        after)
    waiting_on = [queued[s] for s in models if s in queued]
    if scheduled or waiting_on or changed:
        launcher.launch(STUDY_JOB, study_script(root), root, 0, resources.cpus_per_job,
                        [jobs[s] for s in scheduled] + waiting_on)
    if jobs:
        launcher.follow()
    else:
        print("nothing to submit: every stage is up to date")
    result = {"commit": commit, "jobs": jobs, "model_jobs": scheduled, "prepare": prepare,
              "skipped": [s for s in models if s not in scheduled]}
    if args.json:
        (work_dir / "last-submission.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def add_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--repo", default=".", help="the DVC workspace to submit (default: here)")
    s.add_argument("--work-dir", default=".slurm", help="clones, job scripts and logs (on the shared filesystem)")
    s.add_argument("--partition", default="", help="sbatch --partition of every job")
    s.add_argument("--account", default="", help="sbatch --account of every job")
    s.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per model stage (x train.devices when > 1)")
    s.add_argument("--cpus-per-job", type=int, default=1, help="CPU cores per job (x train.devices when > 1)")
    s.add_argument("--mem", default="", help="memory per job, e.g. 32G")
    s.add_argument("--time", default="", help="time limit per job, e.g. 24:00:00")
    s.add_argument("--sbatch-arg", action="append", default=[], help="one more sbatch option (repeatable)")
    s.add_argument("--link-type", default="reflink,hardlink,symlink,copy",
                   help="cache.type in the clones (links: no copies of the cache)")
    s.add_argument("--dry-run", action="store_true", help="write the job scripts and print the plan, submit nothing")
    s.add_argument("--json", action="store_true", help="also write <work-dir>/last-submission.json")
    s.set_defaults(func=submit)
