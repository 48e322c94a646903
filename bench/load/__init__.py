"""Load generation with locust: the recorder plug-in, the scenarios and their locustfiles."""
