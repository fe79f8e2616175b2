"""GraphQL documents and export inputs shared by the tests and the benches."""

JOB_FIELDS = """
    id kind status progress message error projectId gameId retryOf
    createdAt updatedAt startedAt completedAt downloadUrl
"""

USER_ERRORS = "userErrors { field message code }"

START_OVERLAY = f"""
mutation Start($input: OverlayExportInput!) {{
  startOverlayExport(input: $input) {{ job {{ {JOB_FIELDS} }} {USER_ERRORS} }}
}}
"""

START_FRAMING = f"""
mutation Start($input: FramingExportInput!) {{
  startFramingExport(input: $input) {{ job {{ {JOB_FIELDS} }} {USER_ERRORS} }}
}}
"""

START_ANNOTATE = f"""
mutation Start($input: AnnotateExportInput!) {{
  startAnnotateExport(input: $input) {{ job {{ {JOB_FIELDS} }} {USER_ERRORS} }}
}}
"""

CANCEL = f"""
mutation Cancel($id: ID!) {{
  cancelExport(id: $id) {{ job {{ {JOB_FIELDS} }} {USER_ERRORS} }}
}}
"""

RETRY = f"""
mutation Retry($id: ID!) {{
  retryExport(id: $id) {{ job {{ {JOB_FIELDS} }} {USER_ERRORS} }}
}}
"""

GET_JOB = f"query Job($id: ID!) {{ exportJob(id: $id) {{ {JOB_FIELDS} }} }}"

LIST_JOBS = """
query Jobs($first: Int, $after: String, $filter: ExportJobFilter) {
  exportJobs(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id kind status projectId gameId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

WATCH_JOB = """
subscription Watch($id: ID!) {
  exportJob(id: $id) { id status progress message error downloadUrl }
}
"""

WATCH_JOBS = """
subscription WatchAll($filter: ExportJobFilter) {
  exportJobs(filter: $filter) { id kind status progress }
}
"""


def overlay_input(project_id: int, **extra: object) -> dict[str, object]:
    return {
        "projectId": project_id,
        "effectType": "DARK_OVERLAY",
        "highlightRegions": [
            {
                "startTime": 0.5,
                "endTime": 1.5,
                "keyframes": [
                    {"time": 0.5, "x": 100, "y": 80, "radiusX": 40, "radiusY": 30},
                    {"time": 1.5, "x": 200, "y": 90, "radiusX": 40, "radiusY": 30},
                ],
            }
        ],
        **extra,
    }


def framing_input(project_id: int, **extra: object) -> dict[str, object]:
    return {
        "projectId": project_id,
        "cropKeyframes": [
            {"time": 0, "x": 0, "y": 0, "width": 320, "height": 180},
            {"time": 2, "x": 100, "y": 50, "width": 320, "height": 180},
        ],
        "outputWidth": 640,
        "outputHeight": 360,
        **extra,
    }


def annotate_input(game_id: int, **extra: object) -> dict[str, object]:
    return {
        "gameId": game_id,
        "clips": [
            {"startTime": 1, "endTime": 3, "name": "Goal", "notes": "Left foot", "rating": 5},
            {"startTime": 5, "endTime": 6, "name": "Save", "notes": None, "rating": None},
        ],
        **extra,
    }


OUTPUT_FIELDS = """
    output { durationSeconds width height frameRate sizeBytes contentType posterUrl }
"""

GET_OUTPUT = f"query Output($id: ID!) {{ exportJob(id: $id) {{ status {OUTPUT_FIELDS} }} }}"

LIST_OUTPUTS = f"""
query Outputs($first: Int) {{
  exportJobs(first: $first) {{ edges {{ node {{ id status {OUTPUT_FIELDS} }} }} }}
}}
"""

WATCH_OUTPUT = f"""
subscription WatchOutput($id: ID!) {{
  exportJob(id: $id) {{ status progress downloadUrl {OUTPUT_FIELDS} }}
}}
"""
