"""Paddle Inference's predictor API, shared by the benchmarks: tostatic.inference has the same
one, so one runner serves both engines."""
from __future__ import annotations

from typing import Any, Callable


def paddle_predictor(prefix: str, threads: int) -> Any:
    """Paddle Inference 3.3.1 on a legacy .pdmodel, CPU, quiet, `threads` math threads."""
    from paddle import inference

    config = inference.Config(prefix + ".pdmodel", prefix + ".pdiparams")
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(threads)
    return inference.create_predictor(config)


def handle_runner(predictor: Any) -> Callable[[dict[str, Any]], Any]:
    """feeds by input name -> the first output, through the predictor's input and output
    handles."""
    handles = {n: predictor.get_input_handle(n) for n in predictor.get_input_names()}
    output = predictor.get_output_handle(predictor.get_output_names()[0])

    def run(feeds: dict[str, Any]) -> Any:
        for name, handle in handles.items():
            handle.reshape(feeds[name].shape)
            handle.copy_from_cpu(feeds[name])
        predictor.run()
        return output.copy_to_cpu()
    return run
