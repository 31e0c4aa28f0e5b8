"""Options shared by the commands that fan work out (``dyck sweep``, ``train-sweep``, ``reproduce``):
where tasks run (``--executor local|ray``) and what each asks for."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

EXECUTOR = typer.Option("local", "--executor", help="Where tasks run: local (processes on this machine) or ray "
                        "(a Ray cluster: --address, or $RAY_ADDRESS, else a local one).")
ADDRESS = typer.Option(None, "--address", help="Ray cluster address (e.g. auto, ray://head:10001); default "
                       "$RAY_ADDRESS, else a local Ray cluster is started for the run.")
CPUS_PER_TASK = typer.Option(1.0, "--cpus-per-task", help="CPUs each task reserves on the cluster (ray).")
GPUS_PER_TASK = typer.Option(0.0, "--gpus-per-task", help="GPUs each task reserves on the cluster (ray; e.g. 1, or "
                             "0.5 to put two tasks on one GPU).")
STORAGE = typer.Option(None, "--storage", help="A folder every worker can reach (e.g. NFS) for tasks' working files "
                       "and resume state; default each node's temporary folder. Outputs always come back to --out.")
MAX_RETRIES = typer.Option(3, "--max-retries", help="Reruns of a task whose worker died (killed, out of memory).")


def make(executor: str, jobs: int, address: Optional[str], cpus_per_task: float, gpus_per_task: float,
         storage: Optional[Path], max_retries: int):
    from ..executors import make_executor

    return make_executor(executor, jobs=jobs, address=address, cpus_per_task=cpus_per_task,
                         gpus_per_task=gpus_per_task, storage=storage, max_retries=max_retries)


def validate(executor: str, jobs: int, address: Optional[str], cpus_per_task: float, gpus_per_task: float,
             max_retries: int) -> None:
    from ..executors import validate_executor_options

    validate_executor_options(executor, jobs=jobs, address=address, cpus_per_task=cpus_per_task,
                              gpus_per_task=gpus_per_task, max_retries=max_retries)


def task_device(device: str, executor: str, gpus_per_task: float):
    """The torch device tasks use. Local: checked here (``auto`` -> a GPU when present). Ray: the
    workers' machines decide, not the driver's (a head node often has no GPU): ``auto`` means
    ``cuda`` when tasks reserve GPUs, else ``cpu``; an explicit device is passed on unchecked."""
    import torch

    from ..fileio import resolve_device

    if executor != "ray":
        return resolve_device(device)
    d = (device or "auto").lower()
    if d == "auto":
        return torch.device("cuda" if gpus_per_task > 0 else "cpu")
    try:
        return torch.device(d)
    except RuntimeError:
        return resolve_device(d)  # its one-line error for a device name torch does not know
