"""Drawing a flow: a mermaid state diagram, or PNG/SVG through graphviz when installed."""

from __future__ import annotations

import shutil
import subprocess

from bot.engine.flow import END, Flow


class GraphError(Exception):
    pass


def _edges(flow: Flow):
    for i, step in enumerate(flow.steps):
        if step.next:
            for b in step.next:
                yield step.id, b.goto, b.condition or ("otherwise" if len(step.next) > 1 else "")
        else:
            yield step.id, flow.steps[i + 1].id if i + 1 < len(flow.steps) else END, ""


def _label(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mermaid(flow: Flow) -> str:
    out = ["stateDiagram-v2", f"    %% {flow.title} (version {flow.version})"]
    for step in flow.steps:
        kind = "say" if step.type == "say" else step.type
        text = _label(step.text).replace('"', "'").replace(":", " -")
        out.append(f'    state "{step.id} ({kind}): {text}" as {step.id}')
    out.append(f"    [*] --> {flow.first}")
    for src, dst, cond in _edges(flow):
        target = "[*]" if dst == END else dst
        label = f" : {cond.replace(':', ' ')}" if cond else ""
        out.append(f"    {src} --> {target}{label}")
    return "\n".join(out) + "\n"


def dot(flow: Flow) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    out = ["digraph flow {", "  rankdir=TB; node [shape=box, style=rounded, fontname=Helvetica, fontsize=10];",
           f"  labelloc=t; label={q(f'{flow.title} (version {flow.version})')};",
           '  __start__ [shape=circle, label="", width=0.2, style=filled, fillcolor=black];',
           '  __end__ [shape=doublecircle, label="", width=0.2, style=filled, fillcolor=black];']
    for step in flow.steps:
        shape = ", style=\"rounded,dashed\"" if step.type == "say" else ""
        out.append(f"  {step.id} [label={q(step.id + ' (' + step.type + ')' + chr(10) + _label(step.text, 50))}{shape}];")
    out.append(f"  __start__ -> {flow.first};")
    for src, dst, cond in _edges(flow):
        label = f" [label={q(cond)}, fontsize=9]" if cond else ""
        out.append(f"  {src} -> {dst}{label};")
    out.append("}")
    return "\n".join(out) + "\n"


def draw(flow: Flow, fmt: str) -> bytes:
    if fmt == "mermaid":
        return mermaid(flow).encode()
    if fmt == "dot":
        return dot(flow).encode()
    if fmt not in ("png", "svg"):
        raise GraphError(f"unknown format '{fmt}'; use mermaid, dot, png or svg")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphError(
            "drawing PNG or SVG needs Graphviz's 'dot' program: install the 'graphviz' package "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), or use --format mermaid"
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot(flow).encode(), capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise GraphError(f"graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout
