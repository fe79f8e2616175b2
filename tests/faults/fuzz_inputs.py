"""Generated requests for the fuzz case: what each strategy draws is one HTTP request.

Three sources, so that every query and mutation is reached both through inline
literals and through variables, and the transport itself is abused too:

- hypothesis-graphql documents for each root field, valid (POSITIVE) and not
  (NEGATIVE), with literals straight from the schema;
- fixed documents with variables: valid inputs (which start jobs) and inputs
  near them (right shapes, edge values, junk in any place), which is what
  reaches validation;
- raw requests: bodies that are not JSON, JSON of the wrong shape, odd content
  types, GET requests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from tests.support.queries import (
    CANCEL,
    GET_JOB,
    LIST_JOBS,
    RETRY,
    START_ANNOTATE,
    START_FRAMING,
    START_OVERLAY,
)

SCHEMA = graphql.build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
QUERIES = ("exportJob", "exportJobs")
MUTATIONS = (
    "startOverlayExport",
    "startFramingExport",
    "startAnnotateExport",
    "cancelExport",
    "retryExport",
)
JSON = "application/json"


@dataclass(frozen=True)
class FuzzRequest:
    label: str
    body: bytes = b""
    content_type: str = JSON
    method: str = "POST"
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.label}: {self.method} {self.params} {self.body[:2000]!r}"


def graphql_body(label: str, query: str, variables: Any = None) -> FuzzRequest:
    # NaN and Infinity are not JSON, but a careless client sends them anyway.
    body = json.dumps({"query": query, "variables": variables}, allow_nan=True)
    return FuzzRequest(label, body.encode())


def documents(field: str, mode: Mode) -> st.SearchStrategy[FuzzRequest]:
    """hypothesis-graphql documents calling `field`, with inline literals."""
    return from_schema(SCHEMA, fields=[field], mode=mode).map(
        lambda document: graphql_body(f"{field} {mode.name.lower()}", str(document))
    )


# --- values near the valid ones ---

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
numbers = st.one_of(
    st.floats(min_value=-5, max_value=400),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 2**53 + 1, float("nan"), float("inf")]),
)
tricky_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            " ",
            "x" * 5000,
            "'; DROP TABLE export_jobs; --",
            "\x00",
            "%s%s%n",
            "../../etc/passwd",
            "🎬" * 50,
            "SELECT 1",
        ]
    ),
)


def loosely(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, now and then anything at all."""
    return st.one_of(valid, valid, valid, junk)


def some_of(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Every field, or any subset of them (missing required fields included)."""
    return st.one_of(
        st.fixed_dictionaries({k: loosely(v) for k, v in fields.items()}),
        st.fixed_dictionaries({}, optional={k: loosely(v) for k, v in fields.items()}),
    )


def listed(item: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[Any]:
    return loosely(st.lists(item, max_size=max_size))


coordinates = st.floats(min_value=0, max_value=2000)
sizes = st.floats(min_value=1, max_value=500)


@st.composite
def valid_overlay(draw: st.DrawFn, project_id: int) -> dict[str, Any]:
    regions = []
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.floats(min_value=0, max_value=60))
        end = start + draw(st.floats(min_value=0.1, max_value=30))
        times = sorted(draw(st.lists(st.floats(start, end), min_size=1, max_size=4)))
        keyframes = [
            {
                "time": time,
                "x": draw(coordinates),
                "y": draw(coordinates),
                "radiusX": draw(sizes),
                "radiusY": draw(sizes),
            }
            for time in times
        ]
        regions.append({"startTime": start, "endTime": end, "keyframes": keyframes})
    effect = draw(st.sampled_from(["BRIGHTNESS_BOOST", "DARK_OVERLAY", "ORIGINAL"]))
    return {"projectId": project_id, "effectType": effect, "highlightRegions": regions}


@st.composite
def valid_framing(draw: st.DrawFn, project_id: int) -> dict[str, Any]:
    times = sorted(draw(st.lists(st.floats(0, 600), min_size=1, max_size=4)))
    crops = [
        {
            "time": time,
            "x": draw(coordinates),
            "y": draw(coordinates),
            "width": draw(sizes),
            "height": draw(sizes),
        }
        for time in times
    ]
    side = st.integers(8, 2048).map(lambda half: half * 2)
    sized = st.fixed_dictionaries({"outputWidth": side, "outputHeight": side})
    output = draw(st.one_of(st.just({}), sized))
    return {"projectId": project_id, "cropKeyframes": crops, **output}


@st.composite
def valid_annotate(draw: st.DrawFn, game_id: int) -> dict[str, Any]:
    clips = []
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.floats(min_value=0, max_value=3600))
        clip = {
            "startTime": start,
            "endTime": start + draw(st.floats(min_value=0.1, max_value=120)),
            "name": draw(st.text(min_size=1, max_size=40).filter(str.strip)),
            "notes": draw(st.one_of(st.none(), st.text(max_size=100))),
            "rating": draw(st.one_of(st.none(), st.integers(1, 5))),
        }
        clips.append(clip)
    return {"gameId": game_id, "clips": clips}


def start_inputs(project_ids: list[int], game_ids: list[int]) -> dict[str, Any]:
    """Variables strategies for the three start mutations: valid or near it."""
    project = st.one_of(st.sampled_from(project_ids), st.integers(-3, 10), numbers)
    game = st.one_of(st.sampled_from(game_ids), st.integers(-3, 10), numbers)
    key = st.one_of(st.none(), tricky_text)
    keyframe = some_of(
        {"time": numbers, "x": numbers, "y": numbers, "radiusX": numbers, "radiusY": numbers}
    )
    region = some_of({"startTime": numbers, "endTime": numbers, "keyframes": listed(keyframe, 4)})
    crop = some_of(
        {"time": numbers, "x": numbers, "y": numbers, "width": numbers, "height": numbers}
    )
    clip = some_of(
        {
            "startTime": numbers,
            "endTime": numbers,
            "name": tricky_text,
            "notes": st.one_of(st.none(), tricky_text),
            "rating": st.one_of(st.none(), st.integers(-2, 8)),
        }
    )
    effects = st.sampled_from(["BRIGHTNESS_BOOST", "DARK_OVERLAY", "ORIGINAL", "dark", "NOPE"])
    sides = st.one_of(st.none(), st.integers(-10, 5000))
    return {
        "startOverlayExport": st.one_of(
            st.sampled_from(project_ids).flatmap(valid_overlay),
            some_of(
                {
                    "projectId": project,
                    "effectType": effects,
                    "highlightRegions": listed(region, 3),
                    "idempotencyKey": key,
                }
            ),
        ),
        "startFramingExport": st.one_of(
            st.sampled_from(project_ids).flatmap(valid_framing),
            some_of(
                {
                    "projectId": project,
                    "cropKeyframes": listed(crop, 4),
                    "outputWidth": sides,
                    "outputHeight": sides,
                    "idempotencyKey": key,
                }
            ),
        ),
        "startAnnotateExport": st.one_of(
            st.sampled_from(game_ids).flatmap(valid_annotate),
            some_of({"gameId": game, "clips": listed(clip, 4), "idempotencyKey": key}),
        ),
    }


def with_variables(
    project_ids: list[int], game_ids: list[int], strangers_job: str
) -> dict[str, st.SearchStrategy[FuzzRequest]]:
    """Per root field: its test document with generated variables."""
    ids = st.one_of(
        st.uuids().map(str),
        tricky_text,
        st.integers(),
        st.just(strangers_job),
        st.just(strangers_job.upper()),
        st.just(f" {strangers_job}"),
    )
    statuses = st.sampled_from(
        ["PENDING", "QUEUED", "PROCESSING", "COMPLETE", "ERROR", "CANCELLED", "DONE"]
    )
    kinds = st.sampled_from(["OVERLAY", "FRAMING", "ANNOTATE", "overlay"])
    filters = st.one_of(
        st.none(),
        some_of(
            {
                "status": listed(statuses, 3),
                "kind": listed(kinds, 3),
                "projectId": st.one_of(st.sampled_from(project_ids), numbers),
                "gameId": st.one_of(st.sampled_from(game_ids), numbers),
            }
        ),
    )
    cursors = st.one_of(st.none(), tricky_text, st.binary(max_size=40).map(bytes.hex))
    starts = start_inputs(project_ids, game_ids)
    by_id = some_of({"id": ids})
    listing = some_of({"first": st.integers(-5, 200), "after": cursors, "filter": filters})
    documents_and_variables = {
        "exportJob": (GET_JOB, by_id),
        "exportJobs": (LIST_JOBS, listing),
        "startOverlayExport": (START_OVERLAY, some_of({"input": starts["startOverlayExport"]})),
        "startFramingExport": (START_FRAMING, some_of({"input": starts["startFramingExport"]})),
        "startAnnotateExport": (
            START_ANNOTATE,
            some_of({"input": starts["startAnnotateExport"]}),
        ),
        "cancelExport": (CANCEL, by_id),
        "retryExport": (RETRY, by_id),
    }
    return {
        field: variables.map(
            lambda values, field=field, query=query: graphql_body(
                f"{field} variables", query, values
            )
        )
        for field, (query, variables) in documents_and_variables.items()
    }


raw_requests: st.SearchStrategy[FuzzRequest] = st.one_of(
    st.binary(max_size=300).map(lambda body: FuzzRequest("raw bytes", body)),
    st.tuples(st.sampled_from(["text/plain", "application/x-www-form-urlencoded", ""]), junk).map(
        lambda pair: FuzzRequest("raw content type", json.dumps(pair[1]).encode(), pair[0])
    ),
    st.one_of(
        junk,
        st.fixed_dictionaries(
            {},
            optional={
                "query": st.one_of(junk, st.just("{ exportJobs { edges { cursor } } }")),
                "variables": junk,
                "operationName": junk,
                "extensions": junk,
            },
        ),
        st.lists(st.fixed_dictionaries({"query": st.just("{ __typename }")}), max_size=3),
    ).map(lambda value: FuzzRequest("raw json", json.dumps(value).encode())),
    st.lists(
        st.tuples(
            st.sampled_from(["query", "variables", "operationName", "extensions"]),
            st.one_of(
                st.text(max_size=40),
                st.sampled_from(
                    [
                        "{ exportJobs { edges { cursor } } }",
                        'mutation { cancelExport(id: "x") { job { id } } }',
                        "{ __schema { types { name } } }",
                        "null",
                        "[]",
                        '{"id": 1}',
                    ]
                ),
            ),
        ),
        max_size=3,
    ).map(lambda params: FuzzRequest("raw get", method="GET", params=tuple(params))),
)


# Shares of the cases. Documents with literals cost more to generate (overlay
# inputs nest three lists deep, so fewer of those); variables reach validation.
POSITIVE, NEGATIVE, VARIABLES, OVERLAY_DOCUMENTS, RAW = 3, 2, 7, 1, 4

Plan = list[tuple[str, st.SearchStrategy[FuzzRequest], int]]


def planned(total: int, project_id: int, game_id: int, strangers_job: str) -> Plan:
    """(label, strategy, cases) for `total` cases in all, every root field included."""
    variables = with_variables([project_id], [game_id], strangers_job)
    weighted: Plan = [("raw", raw_requests, RAW)]
    for field in QUERIES + MUTATIONS:
        literal = OVERLAY_DOCUMENTS if field == "startOverlayExport" else None
        for mode, weight in ((Mode.POSITIVE, POSITIVE), (Mode.NEGATIVE, NEGATIVE)):
            label = f"{field} {mode.name.lower()}"
            weighted.append((label, documents(field, mode), literal or weight))
        weighted.append((f"{field} variables", variables[field], VARIABLES))
    shares = sum(weight for _, _, weight in weighted)
    plan = [(label, strategy, total * weight // shares) for label, strategy, weight in weighted]
    label, strategy, cases = plan[0]
    plan[0] = (label, strategy, cases + total - sum(n for _, _, n in plan))
    return plan


def draw_bucket(
    total: int, project_id: int, game_id: int, strangers_job: str, index: int
) -> list[FuzzRequest]:
    """The cases of `planned(...)[index]`: the same ones on every run."""
    label, strategy, cases = planned(total, project_id, game_id, strangers_job)[index]
    bucket: list[FuzzRequest] = []
    # A small search space may run out before `cases`: draw again until done.
    while len(bucket) < cases:
        more = _draw(strategy, cases - len(bucket), derandomize=not bucket)
        assert more, f"{label}: nothing drawn"
        bucket += more
    return bucket


def _draw(
    strategy: st.SearchStrategy[FuzzRequest], cases: int, *, derandomize: bool
) -> list[FuzzRequest]:
    drawn: list[FuzzRequest] = []

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=strategy)
    def collect(request: FuzzRequest) -> None:
        drawn.append(request)

    collect()
    return drawn
