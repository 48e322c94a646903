"""``sessionbench cost``: instructions per request of each variant's server, counted by callgrind.

``valgrind`` runs a served variant under callgrind; ``endpoints`` drives it; ``measure``
sequences variants, endpoints, client counts and repeats; ``results`` owns ``cost.json``;
``command`` is the CLI; ``report`` is its report section; ``compare`` compares on instructions.
"""

OPERATION_GROUPS = ("session-lifecycle", "session-select1", "session-get", "machinery")
"""Micro-operation groups, in the tables' order. Here, not in ``results``: the CLI parser
(built by every variant's own interpreter for ``serve``) must not import scipy."""
