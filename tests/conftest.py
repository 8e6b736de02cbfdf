import json
import os
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "paddle-3.3.1"


def fixture_cases(name):
    """(dir, feeds by name, expected outputs) for every io file of a Paddle fixture."""
    d = FIXTURES / name
    meta = json.loads((d / "meta.json").read_text())
    for io_file in meta["io_files"]:
        z = np.load(d / io_file)
        feeds = {f["name"]: z[f["name"]] for f in meta["feeds"]}
        expected = [z[f"out{i}"] for i in range(len(meta["fetches"]))]
        yield d, feeds, expected


def assert_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape,
                                                                 want.dtype, want.shape)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="session")
def real_paddle():
    """Real PaddlePaddle 3.3.1 in legacy-IR mode (writes/reads .pdmodel)."""
    os.environ.setdefault("FLAGS_enable_pir_api", "0")
    return pytest.importorskip("paddle")


def paddle_predict(model, params, feeds):
    """Run files with real paddle.inference on CPU; outputs in fetch order."""
    from paddle import inference

    cfg = inference.Config(str(model), str(params) if params else "")
    cfg.disable_gpu()
    cfg.disable_glog_info()
    predictor = inference.create_predictor(cfg)
    for name in predictor.get_input_names():
        h = predictor.get_input_handle(name)
        h.reshape(feeds[name].shape)
        h.copy_from_cpu(feeds[name])
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]
