"""``sessionbench cost``: instructions per request of each variant's server, counted by callgrind.

``valgrind`` runs a served variant under callgrind; ``endpoints`` drives it; ``measure``
sequences variants, endpoints, client counts and repeats; ``results`` owns ``cost.json``;
``command`` is the CLI; ``report`` is its report section; ``compare`` compares on instructions.
"""
