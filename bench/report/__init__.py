"""The ``report`` and ``compare`` commands: result files in, sections, plots and verdicts out."""
