"""Receiving files: the SFTP landing zone and the content-addressed archive."""
