"""The one web stack: a Flask application served by waitress.

``app.create_app`` builds the application from what the caller hands it (health checks, a metrics
registry, blueprints such as the reviewer console); ``server.WebServer`` serves it on a thread of
the running process. ``crmbridge run`` and ``crmbridge console`` both go through these two, so
/healthz, /readyz, /metrics and the console share one server, one port and one set of headers.
"""
