"""The least time a vision model's convolutions can take on one core, by convolution kind.

Issue 15 asks ResNet-50 at batch 1, one thread, for 0.7x the best of onnxruntime and OpenVINO.
This script counts each model's convolution multiply-adds (forward hooks on the eager layers of
tostatic.vision) and prices them at a given single-core rate, with every shortcut a float32
engine can take for free: 3x3 stride-1 layers by Winograd F(4x4, 3x3) (4x fewer multiplies,
transforms not counted), everything else as GEMM at the full rate, batch norm, bias, activation
and residual adds free. Whatever a real implementation adds comes on top of this bound.

    python benchmarks/flop_bound.py [--models resnet18,resnet50,mobilenet_v2] [--rate 245|peak]
        [--best-ms resnet50=33.4,...]

`--rate peak` prices at the core's measured fused-multiply-add peak instead of the sgemm rate:
a generated loop of 16 independent AVX-512 FMA chains (llvmlite), nothing loaded or stored,
which no convolution can beat.
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import tostatic  # noqa: E402
from tostatic.vision import models  # noqa: E402

WINOGRAD_F4 = 4.0  # direct multiplies / F(4x4, 3x3) multiplies per output tile (144 / 36)


def kind(layer) -> str:
    k = tuple(layer._kernel_size)
    s = tuple(layer._stride)
    if layer._groups > 1:
        return "depthwise" if layer._groups == layer._in_channels else "grouped"
    if k == (1, 1):
        return "1x1" if s == (1, 1) else "1x1 strided"
    if k == (3, 3):
        return "3x3" if s == (1, 1) else "3x3 strided"
    return f"{k[0]}x{k[1]} stem"


def conv_macs(name: str, batch: int = 1) -> dict[str, float]:
    """Multiply-adds of every convolution (and the classifier's matmul) by kind."""
    net = getattr(models, name)()
    net.eval()
    macs: dict[str, float] = defaultdict(float)

    def hook(layer, inputs, output):
        kh, kw = layer._kernel_size
        n, c_out, h, w = output.shape
        c_in = layer._in_channels // layer._groups
        macs[kind(layer)] += n * c_out * h * w * c_in * kh * kw

    def fc_hook(layer, inputs, output):
        macs["classifier"] += inputs[0].shape[0] * layer.weight.shape[0] * layer.weight.shape[1]

    for layer in net.sublayers():
        if isinstance(layer, tostatic.nn.Conv2D):
            layer.register_forward_post_hook(hook)
        elif isinstance(layer, tostatic.nn.Linear):
            layer.register_forward_post_hook(fc_hook)
    net(tostatic.randn([batch, 3, 224, 224]))
    return dict(macs)


def fma_peak(chains: int = 16, width: int = 16, steps: int = 20_000_000) -> float:
    """GFLOP/s of `chains` independent vector FMA chains on one core: the float32 peak."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    vec = f"<{width} x float>"
    one = "float 0x3FF0000000000000"
    small = "float 0x3F50000000000000"
    lines = ["define float @peak(i64 %n) {", "entry:", "  br label %loop", "loop:",
             "  %i = phi i64 [0, %entry], [%i2, %loop]"]
    lines += [f"  %a{c} = phi {vec} [zeroinitializer, %entry], [%b{c}, %loop]"
              for c in range(chains)]
    lines += [f"  %b{c} = call {vec} @llvm.fma.v{width}f32({vec} %a{c}, "
              f"{vec} <{', '.join([one] * width)}>, {vec} <{', '.join([small] * width)}>)"
              for c in range(chains)]
    lines += ["  %i2 = add i64 %i, 1", "  %more = icmp ult i64 %i2, %n",
              "  br i1 %more, label %loop, label %done", "done:"]
    acc = "%b0"
    for c in range(1, chains):
        lines.append(f"  %s{c} = fadd {vec} {acc}, %b{c}")
        acc = f"%s{c}"
    lines += [f"  %r = extractelement {vec} {acc}, i32 0", "  ret float %r", "}",
              f"declare {vec} @llvm.fma.v{width}f32({vec}, {vec}, {vec})"]
    target = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=3)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly("\n".join(lines)), target)
    engine.finalize_object()
    peak = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(engine.get_function_address("peak"))
    times = []
    for _ in range(9):
        start = time.perf_counter()
        peak(steps)
        times.append(time.perf_counter() - start)
    return steps * chains * width * 2 / min(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,resnet50,mobilenet_v2")
    ap.add_argument("--rate", default="245",
                    help="single-core float32 GFLOP/s (numpy sgemm 2048 on one core here: 247 "
                         "at best), or 'peak': the core's measured FMA peak")
    ap.add_argument("--best-ms", default="resnet18=14.9,resnet50=33.4,mobilenet_v2=4.16",
                    help="the best engine's batch-1 one-thread ms, to print the bound's ratio")
    args = ap.parse_args()
    best = dict((k, float(v)) for k, v in (p.split("=") for p in args.best_ms.split(",") if p))
    if args.rate == "peak":
        args.rate = fma_peak()
        print(f"FMA peak of one core: {args.rate:.0f} GFLOP/s")
    args.rate = float(args.rate)
    for name in args.models.split(","):
        macs = conv_macs(name)
        print(f"\n{name}, batch 1: GFLOP and least ms at {args.rate:.0f} GFLOP/s")
        total = 0.0
        for k, m in sorted(macs.items(), key=lambda kv: -kv[1]):
            speedup = WINOGRAD_F4 if k == "3x3" else 1.0
            ms = 2 * m / speedup / (args.rate * 1e9) * 1e3
            total += ms
            note = " (Winograd F(4x4): 4x fewer multiplies)" if speedup > 1 else ""
            print(f"  {k:12s} {2 * m / 1e9:6.2f} GFLOP  {ms:6.2f} ms{note}")
        line = f"  bound        {total:6.2f} ms"
        if name in best:
            line += f" = {total / best[name]:.2f}x the best engine's {best[name]} ms"
        print(line)


if __name__ == "__main__":
    main()
