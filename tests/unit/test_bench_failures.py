"""``make bench`` always finishes: a measurement that fails is a row saying so, never a crash.

Once, on a loaded machine, the dataloaders-off baseline at N = 1,000 tripped its circuit breaker
and the run died with a traceback. Here the calls section runs against a gateway whose baseline
answers "circuit open" (and one whose every answer is garbage), and a section that raises runs
through the same guard ``python -m bench`` uses; each ends as rows, the other measurements kept.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.__main__ import guarded
from bench.gateway import SIZES, Bench, Failed, compute_specs, failure_reason
from bench.report import Row, table
from panelql_sim.demo import DEMO_PANELS

KINDS = {d.name: d.kind for d in DEMO_PANELS}
CIRCUIT_OPEN = [{"message": "catalyst-main: circuit open after 5 failures",
                 "extensions": {"code": "PROVIDER_UNAVAILABLE"}}]


class FakeSims:
    """What Bench.calls reads of the simulators: every panel saw one list call."""

    def __init__(self) -> None:
        self.specs = {s.name: s for n in SIZES for s in compute_specs(n)}

    def knobs(self, **values: Any) -> None:
        pass

    def reset(self) -> None:
        pass

    def calls(self, name: str | None = None) -> dict[str, int]:
        return {n: 1 for n in ([name] if name else self.specs)}

    def routes(self, name: str) -> dict[str, int]:
        return {"GET /api/servers": 1}

    def kind(self, name: str) -> str:
        return KINDS[self.specs[name].demo]


class Baseline(Bench):
    """The gateway side: dataloaders on answer, the baseline (``off…``) answers ``answer``."""

    def __init__(self, answer: Any) -> None:
        super().__init__(FakeSims(), None)  # type: ignore[arg-type]
        self.answer = answer

    def query(self, config: str, text: str, variables: dict[str, Any] | None = None
              ) -> dict[str, Any]:
        if config.startswith("off"):
            if isinstance(self.answer, Exception):
                raise self.answer
            raise Failed(failure_reason(self.answer))
        n = int(config.removeprefix("on"))
        return {"data": {"servers": {"totalCount": n}}}

    def rest_loop(self, name: str) -> int:
        return 1


def test_a_tripped_baseline_is_a_row_saying_so() -> None:
    bench = Baseline(CIRCUIT_OPEN)
    bench.calls()
    rows = {r.what.strip(): r for r in bench.rows}
    baseline = rows["gateway total, dataloaders and read memo off (the memo lives in the "
                    "loaders' request scope)"]
    assert baseline.measured == "/".join(["FAILED: circuit open"] * len(SIZES))
    ratio = rows["dataloaders + memo off ÷ on, N=1,000"]
    assert ratio.measured == "FAILED (see above)"
    # the measurements that worked are still there
    assert rows["gateway total, dataloaders on (declared bound)"].measured.startswith(
        "/".join(["4"] * len(SIZES)))
    assert "FAILED: circuit open" in table(bench.rows)


def test_a_gateway_that_does_not_answer_json_is_a_row() -> None:
    bench = Baseline(Failed("HTTP 502, not JSON"))
    bench.calls()
    assert any(r.measured.startswith("FAILED: HTTP 502, not JSON") for r in bench.rows)


@pytest.mark.parametrize("raised, shown", [
    (Failed("circuit open"), "FAILED: circuit open"),
    (RuntimeError("the bare Strawberry server did not start"),
     "FAILED: RuntimeError: the bare Strawberry server did not start"),
])
def test_a_section_that_raises_is_a_row_and_the_run_goes_on(raised: Exception,
                                                            shown: str) -> None:
    rows = [Row("1 calls", "42", "", "yes")]

    def section() -> None:
        raise raised

    guarded("floor", section, rows)
    assert rows[0] == Row("1 calls", "42", "", "yes")
    assert rows[1] == Row("floor", shown, "", "NO")


def test_the_failure_gist_names_the_breaker_not_the_details() -> None:
    assert failure_reason(CIRCUIT_OPEN) == "circuit open"
    assert failure_reason([{"message": "ptero-eu timed out after 30 s"}]) == "timed out"
    assert failure_reason([]) == "error"
