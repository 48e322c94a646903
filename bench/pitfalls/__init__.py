"""``sessionbench pitfalls``: what each session strategy does under stress, faults and misuse.

``scenarios`` holds one small async function per scenario (docstring first line = label)
that probes one running variant server and returns an ``Outcome`` (ok / degraded /
broken, with the numbers behind it); ``probe`` has the helpers they share (HTTP load,
pool and ``pg_stat_activity`` readings); ``runner`` starts every selected variant as
its own server against one PostgreSQL and runs the matrix into ``pitfalls.json``;
``report`` turns that file into report blocks and plots.
"""
