"""``sessionbench history``: instructions per request of session strategies across FastAPI and
SQLAlchemy releases, one cached environment per version set, steps found and explained.

``sets`` names the version sets, ``envs`` locks and builds their environments, ``runner``
runs the contract check and ``cost`` in each, ``steps`` finds and explains the steps,
``report`` draws and tells them; ``command`` is the CLI entry.
"""
