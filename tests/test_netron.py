"""Our exported .pdmodel opens in Netron as users open it: the `netron` package's own server on
localhost, the page in headless Chromium (Debian's `chromium`, driven by playwright with its
`executable_path`; .ci/run installs it). The graph Netron draws (its SVG) must hold every op
type of the file and, with names shown (Ctrl+U), every variable that links two ops."""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

import tostatic as paddle
import tostatic.nn as nn
import tostatic.nn.functional as F
from tostatic.serialization import framework_pb2
from tostatic.static import InputSpec

pytestmark = pytest.mark.interop

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p
                 and Path(p).exists()), None)


class SmallCNN(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2D(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, image):
        y = F.relu(self.bn(self.conv(image)))
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return F.softmax(self.fc(y))


def _texts(svg: str) -> set[str]:
    """The text of every <text> element of Netron's SVG (tags inside it dropped)."""
    return {html.unescape(re.sub(r"<[^>]*>", "", t)).strip()
            for t in re.findall(r"<text\b[^>]*>(.*?)</text>", svg, re.S)}


def test_exported_model_renders_in_netron(tmp_path):
    if CHROMIUM is None:
        pytest.skip("no chromium executable (Debian's `chromium` package; .ci/run installs it)")
    netron = pytest.importorskip("netron")
    sync_api = pytest.importorskip("playwright.sync_api")

    net = SmallCNN()
    net.eval()
    prefix = str(tmp_path / "cnn")
    paddle.jit.save(net, prefix, input_spec=[InputSpec([None, 3, 8, 8], "float32", "image")])
    block = framework_pb2.ProgramDesc.FromString(Path(prefix + ".pdmodel").read_bytes()).blocks[0]
    op_types = {op.type for op in block.ops} - {"feed", "fetch"}
    persistable = {v.name for v in block.vars if v.persistable}
    # variables one op writes and another reads (Netron draws them as labelled edges)
    written = {n for op in block.ops if op.type != "feed" for a in op.outputs
               for n in a.arguments}
    read = {n for op in block.ops if op.type != "fetch" for a in op.inputs
            for n in a.arguments}
    linking = (written & read) - persistable
    assert {"conv2d", "batch_norm", "relu", "pool2d", "matmul_v2", "softmax"} <= op_types
    assert len(linking) >= 6

    host, port = netron.serve(prefix + ".pdmodel", address=("127.0.0.1", 0), browse=False)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                # Netron's page asks an analytics host; nothing but our server is reachable
                page.route(re.compile(rf"^(?!http://{re.escape(host)}:{port}/)"),
                           lambda route: route.abort())
                page.goto(f"http://{host}:{port}/")
                page.get_by_role("button", name="Accept").click(timeout=30_000)
                page.wait_for_selector("#canvas .node", timeout=60_000)
                nodes = _texts(page.inner_html("#canvas"))
                page.keyboard.press("Control+U")  # View > Show Names: edges get var names
                page.wait_for_selector(f"#canvas text:has-text('{sorted(linking)[0]}')",
                                       timeout=30_000)
                named = _texts(page.inner_html("#canvas"))
            finally:
                browser.close()
    finally:
        netron.stop((host, port))

    # Netron shortens long op names in the middle ('flatten_co…uous_range')
    shortened = [t.split("\u2026") for t in nodes if t.count("\u2026") == 1]
    missing_ops = {t for t in op_types if t not in nodes and not any(
        t.startswith(head) and t.endswith(tail) for head, tail in shortened)}
    assert not missing_ops, f"op types Netron did not draw: {missing_ops}; it drew {nodes}"
    assert "image" in named, named  # the feed's variable
    assert not linking <= nodes  # names appear only once shown
    assert linking <= named, f"variables not shown: {linking - named}; shown {named}"
