"""Calibration: ``context`` plus a known extra cost of about 5 % of its CPU time per GET.

The size of the extra cost is measured, not assumed: the server times it in every
co-scheduled window (variants/calibration.py), and ``sessionbench cost`` counts its
instructions; what a comparison against ``context`` must find follows from them.
"""

from starlette.middleware import Middleware

from variants.app import create_app
from variants.calibration import Burden
from variants.context import router
from variants.engine import lifespan

app = create_app(router, lifespan=lifespan, middleware=[Middleware(Burden, iterations=16)])
