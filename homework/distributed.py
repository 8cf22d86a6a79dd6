"""One job over several processes under `accelerate launch`: who this process is, and what each one does.

    accelerate launch --multi_gpu --num_processes 2 -m homework.sft train   # data parallel on the CPU (gloo)
    accelerate launch --num_processes 4 -m homework.rft train            # four GPUs (NCCL)
    accelerate launch --num_processes 4 -m homework.datagen data/rft.json --model rft   # questions sharded

The launcher (torchrun underneath) sets RANK, WORLD_SIZE and LOCAL_RANK; a plain `python -m ...` sets none and
is one process, exactly as before. Training leaves the data parallelism to HF Trainer (DDP), keeps the global
batch at the configured size (`batch_plan`), runs its loss as a DDP forward (`LossThroughDDP`) and
checks that the processes end in step (`fingerprint`); only the main process writes. Datagen uses this module's
process group for two meeting points: the start, and the end where the main process gathers every shard's
figures.
"""

from __future__ import annotations

import datetime
import os
import sys

import torch

# A shard that finishes early waits for the slowest one at the end: the default 30-minute timeout of a process
# group would kill a datagen run whose shards drift apart by more than that.
MEETING_TIMEOUT = datetime.timedelta(hours=24)


def world() -> tuple[int, int]:
    """(rank, number of processes) as the launcher set them; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def warn_single_cpu_launch() -> None:
    """Say so on stderr when `accelerate launch --cpu` started this run as a single process.

    accelerate (1.15) starts several CPU processes only through MPI (`--mpirun_hostfile`); without one,
    `--cpu --num_processes 2` runs one process with fewer threads, and nothing else would say so.
    """
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true" and "WORLD_SIZE" not in os.environ:
        print("note: accelerate launch --cpu started one process (its multi-CPU mode needs an MPI hostfile); for "
              "N processes on a CPU use: accelerate launch --multi_gpu --num_processes N ...", file=sys.stderr)


def is_main() -> bool:
    return world()[0] == 0


def batch_plan(batch_size: int, processes: int, device_batch: int = 0) -> tuple[int, int]:
    """(rows per device per forward pass, gradient-accumulation steps) that keep `batch_size` rows a step.

    Each of `processes` devices takes batch_size / processes rows a step; with `device_batch` set, a device
    that would take more runs them as several forward passes of device_batch rows and accumulates.
    """
    if batch_size < 1 or processes < 1 or device_batch < 0:
        raise ValueError(f"batch_size and processes must be 1 or more and device_batch 0 or more, got "
                         f"{batch_size}, {processes}, {device_batch}")
    if batch_size % processes:
        raise ValueError(f"--batch_size {batch_size} cannot be split evenly over {processes} processes; "
                         f"use a multiple of {processes}")
    per_device = batch_size // processes
    if not device_batch or device_batch >= per_device:
        return per_device, 1
    if per_device % device_batch:
        raise ValueError(f"--device_batch {device_batch} does not divide the {per_device} rows each of "
                         f"{processes} processes takes per step")
    return device_batch, per_device // device_batch


def use_local_device() -> None:
    """Put this process on its own GPU (LOCAL_RANK), so that "cuda" means that one; nothing to do on a CPU."""
    if world()[1] > 1 and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return "cpu"


def join() -> None:
    """Join the launcher's process group (gloo on a CPU, NCCL on GPUs) unless a library already has."""
    import torch.distributed as dist

    warn_single_cpu_launch()
    if world()[1] > 1 and not dist.is_initialized():
        use_local_device()
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo", timeout=MEETING_TIMEOUT)


class LossForward(torch.nn.Module):
    """A module whose forward is `loss(model, inputs, *args)`: the loss runs as a forward that DDP itself calls.

    DDP averages the processes' gradients only for a forward it ran itself (its reducer is armed in
    `DistributedDataParallel.forward`); a loss that calls parts of the inner model directly, as
    `training.answer_loss` does, would train each process on its own. See `LossThroughDDP`.
    """

    def __init__(self, model: torch.nn.Module, loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, inputs: dict, *args) -> torch.Tensor:
        return self.loss(self.model, inputs, *args)


class LossThroughDDP:
    """`loss` run through a second DDP over the same model as `ddp`, with `ddp`'s settings, made on first use.

    The trainer's own DDP (`ddp`) keeps doing what it does (gradient accumulation's `no_sync`, saving); its
    reducer only acts after a forward of its own, so the gradients are reduced once, by this one, and only
    where `ddp` would: its `require_backward_grad_sync` is carried over on every call.
    """

    def __init__(self, loss):
        self.loss, self.ddp = loss, None

    def __call__(self, ddp, inputs: dict, *args) -> torch.Tensor:
        if self.ddp is None or self.ddp.module.model is not ddp.module:  # a collective: every process's first step
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                LossForward(ddp.module, self.loss), device_ids=ddp.device_ids, output_device=ddp.output_device,
                broadcast_buffers=ddp.broadcast_buffers, find_unused_parameters=ddp.find_unused_parameters,
                gradient_as_bucket_view=ddp.gradient_as_bucket_view)
        self.ddp.require_backward_grad_sync = ddp.require_backward_grad_sync
        return self.ddp(inputs, *args)


def fingerprint(model) -> str:
    """sha256 of the trainable weights: equal on every process of a data-parallel run that stayed in step."""
    import hashlib

    digest = hashlib.sha256()
    for name, param in model.named_parameters():
        if param.requires_grad:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def gather(value) -> list:
    """Every process's `value`, in rank order, on every process ([value] for a plain run). Also a meeting point."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def leave() -> None:
    """Leave the process group cleanly once every process got here (no-op for a plain run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
