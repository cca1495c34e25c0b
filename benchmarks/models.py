"""Inference and training throughput of the registered lifting models.

Inference: frames per second of ``model.predict`` on one whole sequence (default 2,000 frames of
17 joints, batch 1, edge-padded as in evaluation), eval mode, no autograd. Training: optimizer
steps per second of ``training_forward`` + loss + backward + Amsgrad step on a batch of
single-output windows (``receptive_field`` frames each, or the model's own training windows),
with the default hyper-parameters of each model unless ``--channels``/``--hidden`` shrink them.
Warm-up iterations are excluded from the timings.

    python benchmarks/models.py [--frames 2000] [--batch 256] [--steps 3] [--device cpu] [--models tcn,seq2seq]
"""

from __future__ import annotations

import argparse
import time

import torch

from posebench.models import create_model, model_names


def _timed(function, repeats: int) -> float:
    """Seconds per call of ``function`` (one warm-up call first)."""
    function()
    began = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - began) / repeats


def benchmark(name: str, frames: int, batch: int, steps: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = create_model(name).to(device)
    keypoints = torch.randn(1, frames, model.n_joints, 2, device=device)
    mask = torch.rand(1, frames, model.n_joints, device=device) > 0.8 if model.uses_mask else None
    model.eval()
    predict_seconds = _timed(lambda: model.predict(keypoints, mask), 2)

    window = model.receptive_field
    batch_keypoints = torch.randn(batch, window, model.n_joints, 2, device=device)
    batch_mask = torch.rand(batch, window, model.n_joints, device=device) > 0.8 if model.uses_mask else None
    targets = torch.randn(batch, window, model.n_joints, 3, device=device) * 200
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    model.train()

    def step() -> None:
        pred, target = model.training_forward(batch_keypoints, batch_mask, targets)
        loss = model.loss(pred, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    step_seconds = _timed(step, steps)
    return {
        "model": name,
        "receptive_field": window,
        "parameters": model.parameter_count(),
        "inference_fps": frames / predict_seconds,
        "train_steps_per_s": 1.0 / step_seconds,
        "train_windows_per_s": batch / step_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames of the inference sequence")
    parser.add_argument("--batch", type=int, default=256, help="training windows per step")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: all registered)")
    args = parser.parse_args()
    device = torch.device(args.device)
    names = args.models.split(",") if args.models else model_names()
    print(f"device {device}, torch threads {torch.get_num_threads()}, inference on {args.frames} frames, training batch {args.batch}")
    print(f"{'model':14s} {'RF':>4s} {'parameters':>12s} {'inference frames/s':>19s} {'train steps/s':>14s} {'train windows/s':>16s}")
    for name in names:
        row = benchmark(name, args.frames, args.batch, args.steps, device)
        print(f"{row['model']:14s} {row['receptive_field']:4d} {row['parameters']:12,d} {row['inference_fps']:19,.0f} "
              f"{row['train_steps_per_s']:14.2f} {row['train_windows_per_s']:16,.0f}")


if __name__ == "__main__":
    main()
