"""The one training loop, for every family and task.

Per step it records train loss, train error and learning rate; every ``probe_every`` steps it probes
per-layer gradient norms, weight norms and update ratios and flushes everything since the last flush to
the sinks after ONE host sync; per epoch it evaluates val and test and writes a checkpoint that resumes
the run exactly. A non-finite loss stops the run as ``diverged``; a sink's ``should_stop`` cancels it.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skipweb.data import IGNORE_INDEX, DataBundle, DeviceLoader, load_dataset
from skipweb.describe import count_flops
from skipweb.errors import Unavailable, one_line
from skipweb.facts import Metric, split_key
from skipweb.models import count_params
from skipweb.spec import RunSpec
from skipweb.training import checkpoint
from skipweb.training.evaluate import evaluate
from skipweb.training.optim import build_optimizer, build_schedule
from skipweb.training.probes import BLOCK_STATS, BlockProbe, GradProbe
from skipweb.training.sinks import MetricPoint, ProbePoint, RunInfo, RunResult, Sink

log = logging.getLogger(__name__)


class StopRun(Exception):
    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def resolve_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "device cuda was requested but this machine has no CUDA GPU; use device cpu or auto"
        )
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(
        self,
        spec: RunSpec,
        *,
        data_dir: Path,
        device: str | None = None,
        checkpoint_dir: Path | None = None,
        sinks: Sequence[Sink] = (),
        data: DataBundle | None = None,
        cuda_graphs: bool = False,
    ):
        self.spec, self.sinks, self.checkpoint_dir = spec, list(sinks), checkpoint_dir
        self.device = resolve_device(device or spec.device)  # ``device``: a worker's override of the spec's
        seed_everything(spec.seed)
        self.data = data or load_dataset(spec.dataset, data_dir=data_dir, seed=spec.seed, subset=spec.subset)
        info = self.data.info
        self.task, self.num_classes = info.task, info.num_classes
        self.model = spec.build_model(info).to(self.device)
        if spec.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.flops = count_flops(self.model, info.in_channels, info.image_size)
        self.probe = GradProbe(self.model)
        self.blocks: BlockProbe | None = BlockProbe(self.model)  # None: skip-path/activation probes off
        # The step's forward, loss and error as one function: compiled (with CUDA graphs on a GPU: a small net's
        # step there is bound by kernel launches), or as it is. A compiled run compiles its probe steps too, as
        # a second graph with the block probes traced in (BlockProbe's zero leaves instead of gradient hooks);
        # its first probe step runs eagerly, to learn their shapes.
        self.graphs = spec.compile and self.device.type == "cuda"
        compiled = partial(torch.compile, mode="reduce-overhead" if self.graphs else None, dynamic=False)
        self.compiled_step = compiled(self._forward_loss) if spec.compile else self._forward_loss
        self.compiled_probe_step = compiled(self._forward_loss_probed) if spec.compile else None
        # ``cuda_graphs`` (a worker's setting, not the spec's: the numbers are the eager path's): an uncompiled
        # run on a GPU replays its model's forward and backward as CUDA graphs, captured at its first full batch
        # (torch.cuda.make_graphed_callables); probe steps and a smaller last batch run the module as written.
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda" and not spec.compile
        self._eager_forward: Callable[[torch.Tensor], torch.Tensor] | None = None  # set once graphed
        self.generator = torch.Generator().manual_seed(spec.seed)
        loader = partial(
            DeviceLoader,
            mean=self.data.mean,
            std=self.data.std,
            device=self.device,
            channels_last=spec.channels_last,
        )
        augment = info.augment if spec.augment else "none"
        self.train_loader = loader(
            self.data.train,
            batch_size=spec.batch_size,
            shuffle=True,
            augment=augment,
            generator=self.generator,
        )
        # evaluation holds no activations for a backward pass: on a GPU, large batches (fewer kernel launches)
        eval_bs = max(spec.batch_size, 1024 if self.device.type == "cuda" else 256)
        self.eval_loaders = {
            "val": loader(self.data.val, batch_size=eval_bs),
            "test": loader(self.data.test, batch_size=eval_bs),
        }
        self.steps_per_epoch = len(self.train_loader)
        self.optimizer = build_optimizer(self.model, spec)
        self.schedule = build_schedule(self.optimizer, spec, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=spec.amp == "fp16")
        dtype = self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.amp)
        self.autocast = (
            partial(torch.autocast, self.device.type, dtype=dtype) if dtype else contextlib.nullcontext
        )
        self.loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.step, self.epoch, self.wall_offset = 0, 0, 0.0
        self._resume()

    # ---- checkpoints ------------------------------------------------------------------------------
    generation = 0  # the lease's generation (a worker sets the run's attempt): a successor's checkpoints win

    def _resume(self) -> None:
        state = checkpoint.load(self.checkpoint_dir)
        if state is None:
            return
        if state["config_hash"] != self.spec.config_hash():
            raise RuntimeError(f"checkpoint in {self.checkpoint_dir} belongs to another configuration")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        checkpoint.set_rng_state(state["rng"], self.generator)
        self.step, self.epoch, self.wall_offset = state["step"], state["epoch"], state["wall"]
        log.info("resumed from %s at epoch %d, step %d", self.checkpoint_dir, self.epoch, self.step)

    def _save(self, wall: float) -> Path | None:
        if self.checkpoint_dir is None:
            return None
        return checkpoint.save(
            self.checkpoint_dir,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": checkpoint.rng_state(self.generator),
                "step": self.step,
                "epoch": self.epoch,
                "wall": wall,
                "config_hash": self.spec.config_hash(),
                "spec": self.spec.model_dump(mode="json"),
                "generation": self.generation,
            },
            may_write=lambda: all(s.may_write() for s in self.sinks),
        )

    # ---- the loop -----------------------------------------------------------------------------------
    def run(self) -> RunResult:
        spec = self.spec
        total = spec.epochs * self.steps_per_epoch
        info = RunInfo(
            spec.family,
            spec.depth,
            count_params(self.model),
            self.flops,
            str(self.device),
            torch.__version__,
            self.probe.layers,
            self.steps_per_epoch,
            total,
            self.step,
            self.blocks.layers if self.blocks else [],
        )
        for s in self.sinks:
            s.on_start(info)
        self.t0 = time.perf_counter() - self.wall_offset
        # per step: (step, fractional epoch, lr, wall, batch size, [loss, error]) — the tensor stays on the device
        self._window: list[tuple[int, float, float, float, int, torch.Tensor]] = []
        self._probes: list[tuple[int, float, torch.Tensor, torch.Tensor | None]] = []
        self._last_flush = time.perf_counter()
        status, reason, summary = "succeeded", None, {}
        try:
            while self.epoch < spec.epochs:
                summary = self._train_epoch()
        except StopRun as stop:
            status, reason = stop.status, stop.reason
        except Unavailable:  # a sink's store is down past its retry budget: the run is handed back, not failed
            raise
        except torch.OutOfMemoryError:  # the run's size, not the worker: it fails, the worker goes on
            log.warning("run out of GPU memory", exc_info=True)
            status, reason = "failed", self._out_of_memory()
        except Exception as exc:  # the run fails; what it recorded so far stays recorded
            log.exception("run failed")
            status, reason = "failed", one_line(exc)
        result = RunResult(status, reason, summary, self.step, self.epoch, time.perf_counter() - self.t0)
        for s in self.sinks:
            s.on_end(result)
        return result

    def _train_epoch(self) -> dict[str, float]:
        self.model.train()
        sums = {"loss": 0.0, "error": 0.0, "n": 0}
        t_epoch = time.perf_counter()
        spec_batch = self.spec.batch_size
        for i, (x, y) in enumerate(self.train_loader):
            probing = self.step % self.spec.probe_every == 0
            blocks = self.blocks if probing else None
            traced = blocks is not None and self.compiled_probe_step is not None and blocks.can_trace()
            if len(y) != spec_batch or (blocks and not traced):
                # eager: a last, smaller batch would compile (and record) the step a second time for its shape;
                # the block probes' hooks run eagerly until their traced form knows its shapes
                if blocks:
                    blocks.arm()
                loss, err = self._forward_loss(x, y, eager=True)
            else:
                if self.cuda_graphs and self._eager_forward is None:
                    self._capture_graphs(x)
                if self.graphs:
                    torch.compiler.cudagraph_mark_step_begin()
                loss, err = (self.compiled_probe_step if traced else self.compiled_step)(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            block_stats = blocks.collect(self._loss_scale()) if blocks else None
            if probing:
                if self.scaler.is_enabled():
                    self.scaler.unscale_(self.optimizer)  # probe true gradients, not loss-scaled ones
                self.probe.before_step()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            lr = self.schedule.get_last_lr()[0]
            self.schedule.step()
            self.step += 1
            ep = self.epoch + (i + 1) / self.steps_per_epoch
            # one (2,) tensor of this step's loss and error, our own: a CUDA graph's outputs are overwritten
            # by its next replay
            self._window.append((self.step, ep, lr, time.perf_counter() - self.t0, len(y), torch.stack([loss.detach(), err])))
            if probing:
                self._probes.append((self.step, ep, self.probe.after_step(), block_stats))
                self._flush(sums)
        self._flush(sums)
        self.epoch += 1
        summary = {
            Metric.EPOCH_TRAIN_LOSS: sums["loss"] / max(1, sums["n"]),
            Metric.EPOCH_TRAIN_ERROR: sums["error"] / max(1, sums["n"]),
        }
        for split, loader in self.eval_loaders.items():
            scores = evaluate(
                self.model, loader, task=self.task, num_classes=self.num_classes, autocast=self.autocast
            )
            summary.update({split_key(split, k): v for k, v in scores.items()})
        summary[Metric.EPOCH_TIME] = time.perf_counter() - t_epoch
        wall = time.perf_counter() - self.t0
        points = [MetricPoint(k, self.step, float(self.epoch), v, wall) for k, v in summary.items()]
        for s in self.sinks:
            s.on_flush(points, [])
        path = self._save(wall)
        for s in self.sinks:
            s.on_epoch(self.epoch, self.step, summary)
            if path is not None:
                s.on_checkpoint(self.epoch, self.step, path)
        return summary

    def _out_of_memory(self) -> str:
        """One line: which run did not fit, and what would make it fit. Frees the cached blocks for the next run."""
        self.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        spec = self.spec
        free, total = torch.cuda.mem_get_info(self.device) if self.device.type == "cuda" else (0, 0)
        return (f"out of GPU memory: {spec.label} on {spec.dataset} at batch {spec.batch_size} did not fit in the "
                f"{free / 2**30:.1f} of {total / 2**30:.0f} GiB free on this GPU (runs sharing it hold the rest); "
                "lower the batch size, or run fewer runs per GPU (skipweb worker --per-gpu)")

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor, eager: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's loss and its training error (the fraction of wrongly predicted samples, or pixels).
        ``eager``: the module as written, never its CUDA graphs (probe steps' hooks run in Python)."""
        forward = self._eager_forward if eager and self._eager_forward is not None else self.model
        # torch.autocast itself, not self.autocast (a partial): what torch.compile traces surely
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None):
            logits = forward(x)
        loss = self.loss_fn(logits.float(), y)
        with torch.no_grad():
            wrong = logits.argmax(1) != y
            if self.task == "segmentation":  # the padded border of a cropped mask does not count
                valid = y != IGNORE_INDEX
                err = (wrong & valid).sum() / valid.sum().clamp_min(1)
            else:
                err = wrong.float().mean()
        return loss, err.float()

    def _capture_graphs(self, x: torch.Tensor) -> None:
        """Capture the model's training forward and backward for ``x``'s shape as CUDA graphs; the module
        then replays them in training mode (evaluation runs it as written). Its warm-up and capture passes
        would move BatchNorm's running statistics: every buffer is put back as it was."""
        self._eager_forward = self.model.forward  # bound before the graphed forward replaces it
        buffers = list(self.model.buffers())
        saved = [b.detach().clone() for b in buffers]
        amp = self.amp_dtype is not None
        try:
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=amp, cache_enabled=False):
                torch.cuda.make_graphed_callables(self.model, (x.detach().clone(),), num_warmup_iters=3,
                                                allow_unused_input=True)  # e.g. a twin's unused shortcut
        except Exception as exc:  # a model CUDA graphs cannot hold (a host sync in its forward, ...): run it as written
            log.warning("%s: not replayed as CUDA graphs (%s); it trains as written", self.spec.label, one_line(exc))
            vars(self.model).pop("forward", None)  # the class's forward again, if it was replaced
            self._eager_forward, self.cuda_graphs = None, False
        with torch.no_grad():
            for b, s in zip(buffers, saved, strict=True):
                b.copy_(s)

    def _forward_loss_probed(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_forward_loss` with the block probes traced in (compiled as a graph of its own)."""
        assert self.blocks is not None
        self.blocks.arm(traced=True)
        return self._forward_loss(x, y)

    def _loss_scale(self) -> torch.Tensor | None:
        """The GradScaler's current scale as a device tensor (no sync), or None without fp16 scaling."""
        return self.scaler._get_scale_async() if self.scaler.is_enabled() else None

    def _flush(self, sums: dict) -> None:
        """Hand everything since the last flush to the sinks, after one device→host transfer."""
        if not self._window:
            return
        window, probes = self._window, self._probes
        self._window, self._probes = [], []
        n = len(window)
        pairs = torch.stack([w[5] for w in window]).float()  # (n, 2)
        packed = [pairs[:, 0], pairs[:, 1]]
        for p in probes:
            packed += [p[2].flatten()] + ([p[3].flatten()] if p[3] is not None else [])
        host = torch.cat(packed).tolist()  # the one sync
        losses, errors = host[:n], host[n : 2 * n]
        now = time.perf_counter()
        metrics: list[MetricPoint] = []
        for (step, ep, lr, wall, *_), loss, err in zip(window, losses, errors, strict=True):
            metrics += [
                MetricPoint(Metric.TRAIN_LOSS, step, ep, loss, wall),
                MetricPoint(Metric.TRAIN_ERROR, step, ep, err, wall),
                MetricPoint(Metric.LR, step, ep, lr, wall),
            ]
        rate = sum(w[4] for w in window) / max(now - self._last_flush, 1e-9)
        metrics.append(MetricPoint(Metric.SAMPLES_PER_S, window[-1][0], window[-1][1], rate, window[-1][3]))
        self._last_flush = now
        layers, pos = len(self.probe.layers), 2 * n
        probe_points = []
        for step, ep, _, block_stats in probes:
            flat = host[pos : pos + 3 * layers]
            pos += 3 * layers
            stats: dict[str, list[float]] = {}
            if block_stats is not None:
                nb = block_stats.shape[1]
                stats = {k: host[pos + r * nb : pos + (r + 1) * nb] for r, k in enumerate(BLOCK_STATS)}
                pos += len(BLOCK_STATS) * nb
            probe_points.append(
                ProbePoint(step, ep, flat[:layers], flat[layers : 2 * layers], flat[2 * layers :], **stats)
            )
        sums["loss"] += sum(losses)
        sums["error"] += sum(errors)
        sums["n"] += n
        for s in self.sinks:
            s.on_flush(metrics, probe_points)
        bad = next(((s, v) for (s, *_), v in zip(window, losses, strict=True) if not np.isfinite(v)), None)
        if bad is not None:
            raise StopRun("diverged", f"training loss became {bad[1]} at step {bad[0]}")
        if any(s.should_stop() for s in self.sinks):
            raise StopRun("cancelled", f"cancelled at step {self.step}")
