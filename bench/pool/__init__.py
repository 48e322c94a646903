"""Pool waits, holds and barging: the runner's side of the server's pool stats, the
starvation reproduction (``python -m bench.pool.repro``) and the report section."""
