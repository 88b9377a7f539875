"""The set of flows a deployment offers, each compiled once, plus older versions on demand.

A conversation keeps running on the flow text it started with: the store keeps that text
(by its sha256), and :meth:`FlowLibrary.runner_for` compiles it again if the shipped file
has changed since.
"""

from __future__ import annotations

from pathlib import Path

from bot.engine.flow import Flow
from bot.engine.loader import flow_files, load_flow_file, load_flow_text
from bot.engine.runner import FlowRunner
from bot.engine.yamlpos import SourceError

DEFAULT_FLOWS = Path(__file__).resolve().parents[2] / "flows"


class FlowLoadError(Exception):
    def __init__(self, errors: list[SourceError]):
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def validate_paths(paths) -> tuple[list[Flow], list[SourceError]]:
    files, errors = flow_files(paths)
    flows: list[Flow] = []
    seen: dict[tuple[str, int], str] = {}
    for f in files:
        flow, errs = load_flow_file(f)
        errors.extend(errs)
        if flow is None:
            continue
        key = (flow.id, flow.version)
        if key in seen:
            errors.append(SourceError(str(f), 1, 1, f"flow '{flow.id}' version {flow.version} is also defined in {seen[key]}; raise the version or change the id"))
            continue
        seen[key] = str(f)
        flows.append(flow)
    return flows, errors


class FlowLibrary:
    def __init__(self, flows: list[Flow]):
        self._by_sha: dict[str, FlowRunner] = {}
        self._by_lang: dict[tuple[str, str], FlowRunner] = {}
        self.flows: dict[str, Flow] = {}
        for flow in sorted(flows, key=lambda f: (f.id, f.version)):
            self.flows[flow.id] = flow  # the highest version wins for new conversations
            self._by_sha[flow.sha] = FlowRunner(flow)

    @classmethod
    def load(cls, paths=None, strict: bool = True) -> "FlowLibrary":
        flows, errors = validate_paths(paths or [DEFAULT_FLOWS])
        if errors and strict:
            raise FlowLoadError(errors)
        return cls(flows)

    def get(self, flow_id: str) -> Flow | None:
        return self.flows.get(flow_id)

    def runner(self, flow: Flow, lang: str | None = None) -> FlowRunner:
        return self._in_language(self._by_sha[flow.sha], lang)

    def _in_language(self, runner: FlowRunner, lang: str | None) -> FlowRunner:
        """The runner for the flow's wording in ``lang`` (issue 19): one compiled machine per
        flow text and language, built on first use; English when the flow is not translated."""
        variant = runner.flow.in_language(lang)
        if variant is runner.flow:
            return runner
        key = (runner.flow.sha, variant.lang)
        found = self._by_lang.get(key)
        if found is None:
            found = self._by_lang[key] = FlowRunner(variant)
        return found

    def runner_for(self, sha: str, source=None, name: str = "<stored flow>", lang: str | None = None) -> FlowRunner:
        """The runner for the exact flow text a conversation started on, in ``lang``.

        ``source`` is the stored text, or a function returning it: it is only read when the
        text is not among the flows already compiled (so the hot path reads nothing).
        """
        runner = self._by_sha.get(sha)
        if runner is None:
            if callable(source):
                source = source()
            if source is None:
                raise KeyError(sha)
            flow, errors = load_flow_text(source, name)
            if flow is None:
                raise FlowLoadError(errors)
            runner = self._by_sha[sha] = FlowRunner(flow)
        return self._in_language(runner, lang)

    def __iter__(self):
        return iter(sorted(self.flows.values(), key=lambda f: f.title.lower()))

    def __len__(self):
        return len(self.flows)
