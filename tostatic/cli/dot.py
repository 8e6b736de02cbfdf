"""A program as a Graphviz graph: ops are boxes, variables ellipses (inputs and outputs
filled, parameters as notes), each sub-block a cluster its control-flow op points into."""
from __future__ import annotations

from tostatic.cli.common import fmt_shape
from tostatic.dialects.program import BlockOp, ProgramOp

_SKIP_VAR_TYPES = ("FEED_MINIBATCH", "FETCH_LIST", "STEP_SCOPES", "RAW")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _declaring_block(blocks: list[BlockOp], idx: int, name: str) -> tuple[int, str]:
    """(index of the block whose VarDesc `name` resolves to from block idx, its label)."""
    start = idx
    while idx >= 0:
        var = blocks[idx].var(name)
        if var is not None:
            dtype = var.dtype.name if var.dtype is not None else var.var_type.lower()
            shape = f" {fmt_shape(var.shape)}" if var.shape is not None else ""
            return idx, f"{name}\n{dtype}{shape}"
        idx = blocks[idx].parent_idx
    return start, name


def program_to_dot(program: ProgramOp, title: str = "program") -> str:
    """The graph in dot. Nodes sit in the cluster of the block that declares them (edges go
    last and outside every cluster: in dot, an edge inside a cluster pulls its ends in)."""
    blocks = list(program.blocks)
    top = blocks[0]
    feeds = {o.output("Out")[0] for o in top.ops if o.op_type == "feed"}
    fetches = {o.input("X")[0] for o in top.ops if o.op_type == "fetch"}
    params = {v.var_name for b in blocks for v in b.vars if v.persistable}
    skip = {v.var_name for b in blocks for v in b.vars if v.var_type in _SKIP_VAR_TYPES}
    nodes: dict[int, list[str]] = {b.idx: [] for b in blocks}
    edges: list[str] = []
    declared: set[str] = set()
    first_op: dict[int, str] = {}

    def var_node(block: BlockOp, name: str) -> str:
        node = f"v:{name}"
        if node not in declared:
            declared.add(node)
            idx, label = _declaring_block(blocks, block.idx, name)
            style = ('shape=note, style=filled, fillcolor="#eeeeee"' if name in params else
                     'shape=ellipse, style=filled, fillcolor="#d9f2d9"' if name in feeds else
                     'shape=ellipse, style=filled, fillcolor="#f9e0c0"' if name in fetches else
                     "shape=ellipse")
            nodes[idx].append(f"{_q(node)} [label={_q(label)}, {style}];")
        return node

    for block in blocks:
        for i, op in enumerate(block.ops):
            if op.op_type in ("feed", "fetch"):
                continue
            node = f"op:{block.idx}:{i}"
            first_op.setdefault(block.idx, node)
            nodes[block.idx].append(f'{_q(node)} [label={_q(op.op_type)}, shape=box, '
                                    f'style="rounded,filled", fillcolor="#dbe9f6"];')
            for slot in op.input_slots:
                for name in op.input(slot):
                    if name not in skip:
                        edges.append(f"{_q(var_node(block, name))} -> {_q(node)} "
                                     f"[label={_q(slot)}];")
            for slot in op.output_slots:
                for name in op.output(slot):
                    if name not in skip:
                        edges.append(f"{_q(node)} -> {_q(var_node(block, name))} "
                                     f"[label={_q(slot)}];")
            for attr in ("sub_block", "blocks"):
                if op.has_attr(attr):
                    value = op.attr(attr)
                    for idx in value if isinstance(value, list) else [value]:
                        edges.append((node, int(idx)))  # type: ignore[arg-type]

    lines = [f"digraph {_q(title)} {{",
             "  compound=true; rankdir=TB;",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8, color="#555555"];']

    def emit(idx: int, indent: str) -> None:
        lines.extend(indent + n for n in nodes[idx])
        for child in blocks:
            if child.parent_idx == idx and child.idx != idx:
                lines.append(f"{indent}subgraph {_q(f'cluster_block{child.idx}')} {{")
                lines.append(f'{indent}  label={_q(f"block {child.idx}")}; style=dashed; '
                             f'color="#888888";')
                emit(child.idx, indent + "  ")
                lines.append(f"{indent}}}")

    emit(top.idx, "  ")
    for edge in edges:
        if isinstance(edge, tuple):  # a control-flow op -> the block it runs
            node, idx = edge
            if idx in first_op:
                lines.append(f"  {_q(node)} -> {_q(first_op[idx])} [style=dashed, "
                             f"lhead={_q(f'cluster_block{idx}')}, label={_q(f'block {idx}')}];")
        else:
            lines.append("  " + edge)
    lines.append("}")
    return "\n".join(lines) + "\n"
