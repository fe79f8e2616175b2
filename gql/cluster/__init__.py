"""How several API processes on one database act as one service.

- `feed`: every committed job change reaches the subscribers of every process
  (`LocalFeed` in one process; `PostgresFeed`, LISTEN/NOTIFY, across processes).
- `coordinator`: every job that needs following is leased to one live process,
  which alone polls RunPod for it; leases are renewed, taken over when a process
  dies and evened out between processes.
- `registry`: the live processes, which the coordinator counts to share out jobs.
"""
