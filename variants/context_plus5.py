"""Calibration: ``context`` plus a known extra cost of about 5 % of its instructions per GET.

The size of the extra cost is measured, not assumed: ``sessionbench cost`` counts this
variant, and its instruction ratio against ``context`` is what a comparison must find.
"""

from starlette.middleware import Middleware

from variants.app import create_app
from variants.calibration import Burden
from variants.context import router
from variants.engine import lifespan

app = create_app(router, lifespan=lifespan, middleware=[Middleware(Burden, iterations=46)])
