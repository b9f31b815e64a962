"""WSGI entry point: ``gunicorn wsgi:app`` from the repository root."""
from chanjiao import create_app

app = create_app()
