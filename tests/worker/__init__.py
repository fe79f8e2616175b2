"""The export worker: renderers on real generated videos, and the local endpoint over HTTP."""
