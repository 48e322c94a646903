"""Minimal reproductions of what the suite found, one module each (``docs/findings/``).

Each runs with ``.venv/bin/python -m bench.findings.<name>`` on its own: no suite server,
no load generator; the ones that need PostgreSQL start the embedded server the suite uses
(or take ``DATABASE_URL``). ``--quick`` is the short form the tests run.
"""
