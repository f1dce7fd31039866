"""``fastmf web``: a local web page over the service layer (needs the ``web`` extra: Starlette and
uvicorn). See :mod:`fastmf.app.web.server`; nothing else in fastmf imports this package."""
