"""WSGI entry point: ``gunicorn wsgi:app`` from the repository root.

A server that imports this module refuses to start (exit status 1, one line saying why) when
the instance folder is missing or the database is missing, behind its migrations or
read-only: see :mod:`chanjiao.startup`. The ``flask`` command imports it without the check,
so that ``flask --app wsgi init-instance`` can create the instance.
"""
from chanjiao import create_app, startup

_check = startup.wanted()
if _check:
    startup.check_instance_folder()  # before create_app, which would create it for a new key
app = create_app()
if _check:
    startup.check_ready(app)
