"""Backups: ``flask backup create`` / ``verify`` / ``restore`` (see :mod:`.services`)."""
