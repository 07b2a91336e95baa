"""Times the PyTorch peers on bench_report's ResNet workloads.

One JSON object per line, with bench_report's fields (`method`, `model`,
`batch`, `targets`, `size`, `backend`, `median_ms`, `reps`) plus `peer` and
`threads`, so that both outputs can be read by the same script. Random
weights (torchvision's initialisation, inference mode), a seeded normal input
batch, one target per image: the top-1 class, which pytorch-grad-cam and
TorchCAM find themselves and Captum is given (found outside the timing).
Every workload is run once to warm up, then `--reps` times interleaved with
the others, and the median is printed.

    bash benches/peers/run.sh [--threads 2] [--reps 5]
        [--workloads resnet50_b8,resnet18_b1] [--scorecam-batch 64]
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

import torch
import torchvision
from captum.attr import LayerGradCam, Saliency
from pytorch_grad_cam import FullGrad, GradCAM, GradCAMPlusPlus, ScoreCAM
from torchcam.methods import GradCAM as TcGradCAM
from torchcam.methods import ScoreCAM as TcScoreCAM


def workloads(model, x, top1, scorecam_batch, with_scorecam):
    """(method, peer, callable) for one model and input batch."""
    layer = [model.layer4[-1]]

    def forward():
        with torch.no_grad():
            model(x)

    def pgc(cls, **kw):
        # FullGrad uses every bias layer and warns when given any.
        layers = [] if cls is FullGrad else layer

        def run():
            with cls(model=model, target_layers=layers, **kw) as cam:
                if cls is ScoreCAM:
                    cam.batch_size = scorecam_batch
                cam(input_tensor=x, targets=None)

        return run

    def captum_gradcam():
        LayerGradCam(model, model.layer4).attribute(x, target=top1)

    def captum_saliency():
        Saliency(model).attribute(x.clone().requires_grad_(), target=top1)

    def torchcam(cls, **kw):
        def run():
            with cls(model, target_layer="layer4", **kw) as extractor:
                if cls is TcScoreCAM:
                    with torch.no_grad():
                        scores = model(x)
                else:
                    scores = model(x)
                extractor(class_idx=top1.tolist(), scores=scores)

        return run

    rows = [
        ("forward", "torch", forward),
        ("gradcam", "pytorch-grad-cam", pgc(GradCAM)),
        ("gradcam", "captum", captum_gradcam),
        ("gradcam", "torchcam", torchcam(TcGradCAM)),
        ("gradcam++", "pytorch-grad-cam", pgc(GradCAMPlusPlus)),
        ("saliency", "captum", captum_saliency),
        ("fullgrad", "pytorch-grad-cam", pgc(FullGrad)),
    ]
    if with_scorecam:
        rows += [
            ("scorecam", "pytorch-grad-cam", pgc(ScoreCAM)),
            (
                "scorecam",
                "torchcam",
                torchcam(TcScoreCAM, batch_size=scorecam_batch, input_shape=tuple(x.shape[1:])),
            ),
        ]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workloads", default="resnet50_b8,resnet18_b1")
    parser.add_argument("--scorecam-batch", type=int, default=64)
    parser.add_argument("--methods", default=None, help="comma-separated, e.g. forward,gradcam")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = None if args.methods is None else set(args.methods.split(","))
    for workload in args.workloads.split(","):
        name, batch = workload.split("_b")
        batch = int(batch)
        torch.manual_seed(7)
        model = getattr(torchvision.models, name)(weights=None).eval()
        x = torch.randn(batch, 3, args.size, args.size)
        with torch.no_grad():
            top1 = model(x).argmax(dim=1)
        # Score-CAM is one masked forward per channel and image: ResNet-18
        # at batch 1 only, as in bench_report.
        with_scorecam = name == "resnet18" and batch == 1
        rows = [
            r
            for r in workloads(model, x, top1, args.scorecam_batch, with_scorecam)
            if only is None or r[0] in only
        ]
        times = {(m, p): [] for m, p, _ in rows}
        # The peers' own messages go to stderr; stdout is JSON lines only.
        with contextlib.redirect_stdout(sys.stderr):
            for _, _, run in rows:
                run()
            for _ in range(args.reps):
                for method, peer, run in rows:
                    start = time.perf_counter()
                    run()
                    times[(method, peer)].append((time.perf_counter() - start) * 1e3)
        for method, peer, _ in rows:
            print(
                json.dumps(
                    {
                        "method": method,
                        "peer": peer,
                        "model": name,
                        "batch": batch,
                        "targets": 1,
                        "size": args.size,
                        "backend": "torch-cpu",
                        "threads": args.threads,
                        "median_ms": round(statistics.median(times[(method, peer)]), 3),
                        "reps": args.reps,
                        "versions": {
                            "torch": torch.__version__,
                            "torchvision": torchvision.__version__,
                        },
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
