"""Start-up and the cyclic collector: the objects a model's load makes leave it in the oldest
generation (no young collection walks them again, inside the first run), unless the program
froze objects itself (then its frozen objects stay frozen and the generations are left as
they are); the garbage a load leaves is still collected by a full collection."""
from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "paddle-3.3.1" / "small_cnn"

SCRIPT = textwrap.dedent("""
    import gc, sys
    import tostatic
    from tostatic.runtime.loaded_model import load_model
    freeze = sys.argv[2] == "frozen"
    if freeze:
        gc.freeze()
    frozen = gc.get_freeze_count()
    model = load_model(sys.argv[1] + "/model.pdmodel", sys.argv[1] + "/model.pdiparams")
    young = len(gc.get_objects(0)) + len(gc.get_objects(1))
    print(young, frozen, gc.get_freeze_count(), len(gc.get_objects(2)))
""")


def _start(mode: str) -> list[int]:
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(FIXTURE), mode], text=True,
                         capture_output=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return [int(n) for n in run.stdout.split()]


def test_a_load_leaves_its_objects_in_the_oldest_generation():
    young, frozen, after, old = _start("plain")
    assert frozen == after == 0
    assert young < 2000 < old  # the load made tens of thousands: none left young
    young, frozen, after, old = _start("frozen")
    # the program's frozen objects stay frozen (less the few that died meanwhile)
    assert frozen > 0 and 0.9 * frozen < after <= frozen
    assert young > 2000  # and the load's objects were left where they were


def test_the_garbage_of_a_load_is_still_collected():
    from tostatic.runtime.loaded_model import load_model

    gc.collect()
    model = load_model(str(FIXTURE / "model.pdmodel"), str(FIXTURE / "model.pdiparams"))
    assert model.plan is not None
    # cycles the load left (the IR it replaced), moved to the oldest generation: a full
    # collection finds them (frozen for good, it would find none)
    assert gc.collect() > 0
