"""The collector: a WSGI app (ingest, import, JSON API, dashboard) served by wsgiref or any WSGI server."""
