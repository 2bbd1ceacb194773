"""Real local services for the demo and the tests: SFTP (asyncssh), SMTP (aiosmtpd), ClamAV.

Each service runs in-process in a background thread (pytest fixtures) or as its own
process (``python -m tools.services up``); see ``tools/services/__main__.py``.
"""
