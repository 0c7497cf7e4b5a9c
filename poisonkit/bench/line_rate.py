"""Line rate: each op's throughput over the training-step throughput of the models it
feeds, on the same device. Over 10 means the op costs under a tenth of a training step.
Reads the other benchmarks' results (run them first; `poisonkit bench` does), measures a
training step of the small CNN and of ResNet-18 (CIFAR variant) here, and writes
line_rate.{json,md} in the results folder. Run: python -m poisonkit.bench.line_rate"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from poisonkit._io import write_json, write_text
from poisonkit.eval.models import build_model

from .common import TIMING, images_per_second, machine, results_dir, throughput_results

MODELS = {"small": 256, "resnet18": 128}  # model -> batch size of DESIGN §4


def train_step_rate(name: str, batch: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = build_model(name, 10).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # oneDNN builds its kernels on first use
    return images_per_second(step, batch, min_time=1.0, repeats=2)


def op_rates(device_kind: str) -> list[dict]:
    """poisonkit's rows from the other benchmarks' results on this kind of device."""
    rows = []
    for payload in throughput_results(exclude={"line_rate"}):
        on_gpu = payload["machine"].get("gpu") is not None
        if on_gpu != (device_kind == "cuda"):
            continue
        for r in payload["rows"]:
            if r["impl"].startswith("poisonkit"):
                rows.append({"benchmark": payload["benchmark"], "case": r["case"],
                             "impl": r["impl"], "images_per_s": r["images_per_s"]})
    return rows


def main(quick: bool = False) -> None:
    torch.set_num_threads(2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    steps = {}
    for name, batch in MODELS.items():
        steps[name] = train_step_rate(name, batch, device)
        print(f"training step {name} (batch {batch}): {steps[name]:,.0f} images/s", flush=True)
    rows = op_rates(device.type)
    for r in rows:
        for name, rate in steps.items():
            r[f"line_rate_{name}"] = round(r["images_per_s"] / rate, 1)
    payload = {"benchmark": "line_rate", "machine": machine(), "quick": TIMING["quick"],
               "device": str(device),
               "train_step_images_per_s": {k: round(v) for k, v in steps.items()}, "rows": rows}
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "line_rate.json", payload)
    lines = ["# Line rate: op throughput / training-step throughput", "",
             f"Device: {device} ({payload['machine']['gpu'] or payload['machine']['cpu']}), "
             f"{payload['machine']['torch_threads']} threads. Training step (forward, backward, "
             "SGD): " + ", ".join(f"{k} {v:,.0f} images/s" for k, v in steps.items()) + ".", "",
             "| benchmark | case | op | images/s | x small CNN step | x ResNet-18 step |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['case']} | {r['impl']} | {r['images_per_s']:,.0f} "
                     f"| {r['line_rate_small']:,.1f} | {r['line_rate_resnet18']:,.1f} |")
    write_text(out / "line_rate.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
