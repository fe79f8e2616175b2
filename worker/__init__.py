"""The export worker: RunPod handler, export renderers, local RunPod-compatible endpoint.

Nothing here imports the API package (`gql`); the worker deploys on its own.
"""
