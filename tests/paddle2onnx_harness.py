"""Runs paddle2onnx 2.1 on legacy inference files, one child process a model: paddle2onnx
aborts its process on what it cannot convert, so each model is converted in a child forked
after paddle2onnx (and Paddle) are imported once, and the parent reports each child's status."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = r"""
import os, sys
import paddle2onnx
src, dst = sys.argv[1], sys.argv[2]
for name in sys.argv[3:]:
    pid = os.fork()
    if pid == 0:
        try:
            params = f"{src}/{name}.pdiparams"
            paddle2onnx.export(f"{src}/{name}.pdmodel", params if os.path.exists(params) else "",
                               f"{dst}/{name}.onnx", opset_version=13)
            os._exit(0)
        except BaseException as e:
            print(f"{name}: {e}", file=sys.stderr)
            os._exit(1)
    print("STATUS", name, os.waitpid(pid, 0)[1], flush=True)
"""


def paddle_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLAGS_enable_pir_api", None)  # Paddle's default mode
    return env


def paddle2onnx_all(src: Path, dst: Path, names: list[str]) -> dict[str, str]:
    """Convert src/NAME.pdmodel (+ .pdiparams) to dst/NAME.onnx for each name; returns
    {name: why it failed} for the models paddle2onnx could not convert."""
    r = subprocess.run([sys.executable, "-c", _SCRIPT, str(src), str(dst), *names],
                       env=paddle_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    status = dict(line.split()[1:] for line in r.stdout.splitlines()
                  if line.startswith("STATUS "))
    return {n: f"paddle2onnx exit status {status.get(n)}; its log:\n{r.stderr[-3000:]}"
            for n in names if status.get(n) != "0"}
