"""Where runs go (issue 21): the one routing rule, connected workers, and several runs per GPU, with real
worker processes. A GPU worker is stood in for by ``skipweb worker --gpus 0`` on this CPU-only machine: it
subscribes exactly as a GPU machine's worker does (gpu, any) and trains on the CPU."""

from __future__ import annotations

import json

import pytest

from skipweb.facts import CPU_WORKER_QUEUES, GPU_WORKER_QUEUES, queue_for
from skipweb.services.broker import route
from tests.worker_stack import TINY

BOUND = 600  # every wait returns on its event; this only bounds a failure on a busy machine


def test_one_rule_decides_the_queue() -> None:
    from skipweb.spec import RunSpec
    from skipweb.stories import get_story
    from skipweb.ui.launch import BASE_DEFAULTS

    assert [queue_for(d) for d in ("auto", "cuda", "cpu", None, "tpu")] == ["any", "gpu", "cpu", "any", "any"]
    assert "any" in GPU_WORKER_QUEUES and "any" in CPU_WORKER_QUEUES
    assert "gpu" not in CPU_WORKER_QUEUES and "cpu" not in GPU_WORKER_QUEUES  # cuda never lands on a CPU worker
    # what is launched without naming a device goes where any worker is free: the form, the demo, the presets
    assert BASE_DEFAULTS["device"] == "auto"
    demo = get_story("degradation").preset.specs()
    assert {route(s) for s in demo} == {"any"}
    assert {route(s) for s in get_story("degradation").preset.specs(device="cuda")} == {"gpu"}
    spec = RunSpec.parse({"family": "mlp", "depth": 2, "dataset": "digits", "device": "cpu"})
    assert route(spec) == route(spec.model_dump()) == "cpu"


def _cli_submit(stack, *args: str) -> dict:
    out = stack.cli("submit", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_cuda_waits_for_a_gpu_worker_and_auto_runs_anywhere(make_stack) -> None:
    stack = make_stack("sqlite", None)
    cpu_worker = stack.start_worker()
    stack.wait(lambda: len(stack.connected()) == 1, BOUND, "the CPU worker to connect")
    [gpu_run] = stack.submit(["mlp"], [2], [0], device="cuda")
    [auto_run] = stack.submit(["mlp"], [2], [1], device="auto")
    [done] = stack.wait_final([auto_run], BOUND)
    assert done.status == "succeeded" and done.device.startswith("cpu"), done
    # the CPU worker is idle now and still never took the cuda run; status says why it waits
    assert stack.run(gpu_run).status == "queued" and route(stack.run(gpu_run)) == "gpu"
    status = stack.cli("status", str(gpu_run))
    assert "waiting for a GPU worker: none connected" in status.stdout, status.stdout + status.stderr
    listed = json.loads(stack.cli("status", "--json").stdout)
    assert {r["id"]: r["reason"] for r in listed}[gpu_run].startswith("waiting for a GPU worker")

    stack.kill(cpu_worker)
    stack.start_worker("--gpus", "0")  # a stand-in GPU worker takes it, and trains it on the CPU
    [rec] = stack.wait_final([gpu_run], BOUND)
    assert rec.status == "succeeded", (rec.reason, stack.dump_logs())
    # the killed CPU worker never said goodbye: it stops counting once three heartbeats pass without it
    stack.wait(lambda: {w.kind for w in stack.connected()} == {"gpu"}, BOUND, "only the GPU worker connected")


@pytest.mark.slow
def test_per_gpu_runs_several_at_once_and_presets_take_device(make_stack) -> None:
    stack = make_stack("sqlite", None)
    # a preset submitted with --device cuda goes to the gpu queue; without, to any (nothing silently dropped)
    cuda = _cli_submit(stack, "--preset", "degradation", "--seeds", "0", "--device", "cuda")
    assert {route(stack.run(i)) for i in cuda["run_ids"]} == {"gpu"}
    for i in cuda["run_ids"]:
        stack.cli("cancel", str(i))
    # two long runs, one GPU worker with two processes: both run at the same time (then are cancelled)
    ids = stack.submit(["mlp"], [2], [0, 1], device="auto", epochs=10_000)
    stack.start_worker("--gpus", "0", "--per-gpu", "2")
    stack.wait(lambda: len(stack.connected()) == 2, BOUND, "two GPU worker processes to connect")
    assert {w.kind for w in stack.connected()} == {"gpu"}
    stack.wait(lambda: all(stack.run(i).status == "running" for i in ids), BOUND, "both runs running at once")
    assert len({stack.run(i).lease_owner for i in ids}) == 2
    for i in ids:
        stack.cli("cancel", str(i))
    stack.wait_final(ids, BOUND)


@pytest.mark.slow
def test_launch_default_demo_and_preset_finish_on_a_gpu_worker(make_stack) -> None:
    """What a person launches first, with nothing but a GPU worker connected: the Launch form's default grid,
    the one-click demo's runs and a preset all run there (tiny versions: one seed, one epoch, 64 samples)."""
    from skipweb.grid import plan
    from skipweb.services.launch import submit
    from skipweb.stories import get_story
    from skipweb.ui.launch import BASE_DEFAULTS

    stack = make_stack("sqlite", None)
    stack.start_worker("--gpus", "0", "--per-gpu", "2")
    tiny = {k: v for k, v in TINY.items() if k != "device"}
    form = {k: BASE_DEFAULTS[k] for k in ("device", "probe_every")} | tiny
    launch = submit(plan(["resnet"], [8], [0], form), title="launch default", celery=stack.celery())
    demo = submit(get_story("degradation").preset.specs([0], **tiny)[:2], title="demo", celery=stack.celery())
    preset = submit(get_story("add-vs-concat").preset.specs([0], **tiny)[:1], title="preset", celery=stack.celery())
    ids = launch.run_ids + demo.run_ids + preset.run_ids
    assert {route(stack.run(i)) for i in ids} == {"any"}
    recs = stack.wait_final(ids, BOUND)
    assert [r.status for r in recs] == ["succeeded"] * len(ids), [(r.label, r.reason) for r in recs]
    assert all(r.device.startswith("cpu") for r in recs)  # the stand-in GPU worker trains on the CPU
